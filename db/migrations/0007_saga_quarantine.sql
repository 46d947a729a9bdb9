-- Quarantine of the JetStream bridge: aggregate-event messages it could not route (undecodable, invalid, a subject
-- whose tenant differs from the event's, or still failing after the consumer's last delivery), kept byte for byte
-- with where they came from, so an operator can redeliver them after a fix or discard them with a reason. A message
-- quarantined again (the bridge stopped between recording it and terminating it) updates its row: one row per stream
-- message.
CREATE TABLE runner.quarantined_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- The tenant of the subject (`{prefix}.{tenant}.…`): every message the bridge consumes has one.
  tenant_id text NOT NULL,
  stream text NOT NULL,
  stream_sequence bigint NOT NULL CHECK (stream_sequence > 0),
  subject text NOT NULL,
  headers jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(headers) = 'object'),
  payload bytea NOT NULL,
  -- What the payload says, when it decodes: the event id and the sagas it routes to (bulk replay filters on them).
  event_id text,
  saga_names text[] NOT NULL DEFAULT '{}',
  error_kind text NOT NULL CHECK (error_kind IN ('undecodable', 'invalid', 'tenant_mismatch', 'max_deliver')),
  error text NOT NULL,
  delivery_count integer NOT NULL CHECK (delivery_count > 0),
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  status text NOT NULL DEFAULT 'quarantined' CHECK (status IN ('quarantined', 'redelivered', 'discarded')),
  -- Who redelivered or discarded it, when, why and with what outcome; null while quarantined.
  resolution jsonb,
  CHECK ((status = 'quarantined') = (resolution IS NULL)),
  UNIQUE (stream, stream_sequence)
);
-- The API's list: newest first (keyset on id), open ones apart; bulk replay by time range.
CREATE INDEX quarantined_events_list_idx ON runner.quarantined_events (tenant_id, id DESC);
CREATE INDEX quarantined_events_open_idx ON runner.quarantined_events (tenant_id, first_seen_at)
  WHERE status = 'quarantined';

-- Events the bridge delivers name it as their transport in the event log.
ALTER TABLE runner.saga_event_log DROP CONSTRAINT saga_event_log_via_check;
ALTER TABLE runner.saga_event_log ADD CONSTRAINT saga_event_log_via_check
  CHECK (via IN ('ingress', 'jetstream', 'unmatched', 'redelivered'));
