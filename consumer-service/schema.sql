-- The projection of the Kafka topic: one row per command id.
-- Applied by consumer-service at start; safe to run repeatedly and concurrently.
CREATE TABLE IF NOT EXISTS timestamp_records (
  id              uuid PRIMARY KEY,
  event_timestamp timestamptz NOT NULL,
  created_at      timestamptz NOT NULL,              -- when the command was accepted
  persisted_at    timestamptz NOT NULL DEFAULT now() -- when this row was written
);

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
