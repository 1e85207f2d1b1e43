-- The projection of the Kafka topic: one row per command id.
-- Applied by consumer-service at start; safe to run repeatedly and concurrently.
CREATE TABLE IF NOT EXISTS timestamp_records (
  id              uuid PRIMARY KEY,
  event_timestamp timestamptz NOT NULL,
  created_at      timestamptz NOT NULL,              -- when the command was accepted
  persisted_at    timestamptz NOT NULL DEFAULT now(), -- when this row was written
  -- The order rows were committed in: the position a stream resumes from
  -- (Last-Event-ID). Writers take SEQ_LOCK (sink.c) before their INSERT, so
  -- a transaction that commits later holds larger values. Not part of the
  -- API's record, and a replay numbers rows afresh.
  seq             bigint GENERATED ALWAYS AS IDENTITY
);

-- seq added in place on a table created before it (numbers the rows it
-- holds), its index, and the index of ranges of event_timestamp,
-- keyset-paginated on (event_timestamp, id). Each only when missing, looked
-- up first: ALTER TABLE ... IF NOT EXISTS and CREATE INDEX IF NOT EXISTS
-- take their table lock before they look, and so would wait behind any
-- open write transaction -- a consumer starting would not get ready.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'timestamp_records'::regclass
                 AND attname = 'seq' AND NOT attisdropped) THEN
    ALTER TABLE timestamp_records ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
  END IF;
  IF to_regclass('timestamp_records_seq_key') IS NULL THEN
    CREATE UNIQUE INDEX timestamp_records_seq_key ON timestamp_records (seq);
  END IF;
  IF to_regclass('timestamp_records_event_key') IS NULL THEN
    CREATE INDEX timestamp_records_event_key ON timestamp_records (event_timestamp, id);
  END IF;
END
$$;

-- The second projection: records per UTC minute of event_timestamp. The
-- consumer adds the rows its INSERT really inserted, in the same statement,
-- so duplicates and replays never count twice. Created with the rows the
-- table already holds when it is new.
DO $$
BEGIN
  IF to_regclass('timestamp_counts') IS NULL THEN
    CREATE TABLE timestamp_counts (
      minute timestamptz PRIMARY KEY, -- the start of a UTC minute
      count  bigint NOT NULL CHECK (count > 0)
    );
    INSERT INTO timestamp_counts (minute, count)
      SELECT date_trunc('minute', event_timestamp, 'UTC'), count(*)
      FROM timestamp_records GROUP BY 1;
  END IF;
END
$$;

-- Blue-green rebuilds (consumer-service --rebuild): one row per generation.
-- The rebuild replays the topic into table_name under its own consumer group,
-- keeps records_done/records_total/rate current while it runs, and at the
-- switch renames the live table to old_table and table_name to
-- timestamp_records in one transaction. The live consumer serves this row as
-- its rebuild status (/rebuild, rebuild_* on /metrics).
CREATE TABLE IF NOT EXISTS timestamp_rebuilds (
  generation    integer PRIMARY KEY,
  table_name    text NOT NULL,                 -- timestamp_records_g<generation>
  group_id      text NOT NULL,                 -- <KAFKA_GROUP_ID>.rebuild-g<generation>
  state         text NOT NULL CHECK (state IN ('replaying', 'switching', 'live', 'failed')),
  started_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(), -- the rebuild's last progress report
  switched_at   timestamptz,
  records_total bigint NOT NULL DEFAULT 0,     -- messages to replay: end offsets taken at start
  records_done  bigint NOT NULL DEFAULT 0,     -- of those, replayed so far
  rate          double precision NOT NULL DEFAULT 0, -- messages/s over the last few seconds
  old_table     text,                          -- what the live table became at the switch
  switch_ms     double precision,              -- how long the live table was locked for it
  error         text                           -- why the last attempt failed, if it did
);
