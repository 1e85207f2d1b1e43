-- The projection of the Kafka topic: one row per command id.
-- Applied by consumer-service at start; safe to run repeatedly and concurrently.
CREATE TABLE IF NOT EXISTS timestamp_records (
  id              uuid PRIMARY KEY,
  event_timestamp timestamptz NOT NULL,
  created_at      timestamptz NOT NULL,              -- when the command was accepted
  persisted_at    timestamptz NOT NULL DEFAULT now() -- when this row was written
);
