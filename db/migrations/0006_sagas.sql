-- Sagas (the Runner): what the event ingress received and did with each event, events waiting for an instance that
-- does not exist yet (unmatched) or that arrived after it finished (late), the projection of saga instances, their
-- append-only event log, and compensation records. Temporal holds the process state; these tables are what the API
-- reads and what makes a retried ingestion answer the same instances.

-- Every event the ingress recorded (a repeat of (tenant, eventId) is a duplicate), as received (unknown fields kept),
-- with what it did per saga: a list of {sagaName, correlationId, workflowId, outcome, reason}.
CREATE TABLE runner.ingested_events (
  tenant_id text NOT NULL,
  event_id text NOT NULL,
  event jsonb NOT NULL,
  outcomes jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(outcomes) = 'array'),
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX ingested_events_retention_idx ON runner.ingested_events (received_at);

-- Events no running instance took: `unmatched` (no instance yet; claimed by the instance when it starts) and `late`
-- (the instance had finished; redelivered only explicitly). `claimed_by` is the claiming instance's first-execution
-- run id, so a retried claim returns the same events again; `redelivery` is what an explicit redelivery did, so a
-- repeat answers it.
CREATE TABLE runner.unmatched_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL,
  saga_name text NOT NULL,
  correlation_id text NOT NULL,
  workflow_id text NOT NULL,
  event_id text NOT NULL,
  sequence bigint NOT NULL CHECK (sequence >= 0),
  event jsonb NOT NULL,
  kind text NOT NULL CHECK (kind IN ('unmatched', 'late')),
  reason text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'redelivered')),
  claimed_by text,
  redelivery jsonb,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  UNIQUE (tenant_id, saga_name, event_id),
  CHECK ((status = 'pending') = (delivered_at IS NULL)),
  CHECK ((status = 'redelivered') = (redelivery IS NOT NULL))
);
-- The claim of a starting instance: its pending unmatched events in sequence order.
CREATE INDEX unmatched_events_claim_idx ON runner.unmatched_events (tenant_id, saga_name, correlation_id, sequence)
  WHERE kind = 'unmatched';
-- The API's list: newest first (keyset on id), filtered by kind, status and saga.
CREATE INDEX unmatched_events_list_idx ON runner.unmatched_events (tenant_id, id DESC);
CREATE INDEX unmatched_events_open_idx ON runner.unmatched_events (tenant_id, kind, id DESC) WHERE status = 'pending';

-- The current state of every saga instance, one row per (tenant, saga, correlation id) across continue-as-new and
-- generations. A write applies only when (started_at, revision) is newer than the stored one: revisions count up
-- within an instance, and a new generation (a start after the instance finished) starts later.
CREATE TABLE runner.saga_instances (
  tenant_id text NOT NULL,
  saga_name text NOT NULL,
  correlation_id text NOT NULL,
  workflow_id text NOT NULL,
  status text NOT NULL CHECK (
    status IN ('running', 'completed', 'compensating', 'compensated', 'compensation_failed', 'failed', 'cancelled')
  ),
  state jsonb NOT NULL DEFAULT 'null'::jsonb,
  reason text,
  -- {eventId, eventType, aggregateId, sequence, receivedAt} of the last applied event.
  last_event jsonb,
  revision bigint NOT NULL CHECK (revision >= 0),
  applied_events integer NOT NULL DEFAULT 0 CHECK (applied_events >= 0),
  started_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  PRIMARY KEY (tenant_id, saga_name, correlation_id)
);
-- The API's list: newest first (keyset on started_at, saga, correlation id), optionally by status or correlation id.
CREATE INDEX saga_instances_list_idx ON runner.saga_instances (tenant_id, started_at DESC, saga_name DESC, correlation_id DESC);
CREATE INDEX saga_instances_status_idx ON runner.saga_instances (tenant_id, status, started_at DESC);
CREATE INDEX saga_instances_correlation_idx ON runner.saga_instances (tenant_id, correlation_id);

-- What every received event did to its instance; append-only. A retried write appends nothing (the unique key).
CREATE TABLE runner.saga_event_log (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL,
  saga_name text NOT NULL,
  correlation_id text NOT NULL,
  event_id text NOT NULL,
  event_type text NOT NULL,
  aggregate_id text NOT NULL,
  sequence bigint NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('applied', 'duplicate', 'unmatched', 'late', 'redelivered')),
  via text NOT NULL CHECK (via IN ('ingress', 'unmatched', 'redelivered')),
  reason text,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, saga_name, correlation_id, event_id, outcome)
);
CREATE INDEX saga_event_log_timeline_idx ON runner.saga_event_log (tenant_id, saga_name, correlation_id, id);

-- The database itself refuses to rewrite the log, in every session (as audit.events, see 0001 and 0005).
CREATE FUNCTION runner.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER saga_event_log_no_update_delete BEFORE UPDATE OR DELETE ON runner.saga_event_log
  FOR EACH ROW EXECUTE FUNCTION runner.refuse_change();
CREATE TRIGGER saga_event_log_no_truncate BEFORE TRUNCATE ON runner.saga_event_log
  FOR EACH STATEMENT EXECUTE FUNCTION runner.refuse_change();
ALTER TABLE runner.saga_event_log ENABLE ALWAYS TRIGGER saga_event_log_no_update_delete;
ALTER TABLE runner.saga_event_log ENABLE ALWAYS TRIGGER saga_event_log_no_truncate;

-- Compensations of an instance: the last outcome per step (a later generation's run of a step replaces it).
CREATE TABLE runner.saga_compensations (
  tenant_id text NOT NULL,
  saga_name text NOT NULL,
  correlation_id text NOT NULL,
  step text NOT NULL,
  status text NOT NULL CHECK (status IN ('compensated', 'failed')),
  error text,
  recorded_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, saga_name, correlation_id, step)
);
