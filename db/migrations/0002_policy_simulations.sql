-- Policy simulation runs: the status projection written by activities (Temporal stays the source of truth).
CREATE TABLE scheduler.policy_runs (
  tenant_id text NOT NULL,
  run_id text NOT NULL,
  policy_id text NOT NULL,
  policy_version integer NOT NULL,
  status text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  priority text NOT NULL,
  queued_at timestamptz NOT NULL,
  started_at timestamptz,
  finished_at timestamptz,
  -- Monotonic per run: a late or retried write never overwrites a newer state.
  revision integer NOT NULL,
  document jsonb NOT NULL,
  idempotency_key text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, run_id)
);

-- Listing newest first, optionally by policy or status (keyset pagination on queued_at, run_id).
CREATE INDEX policy_runs_list_idx ON scheduler.policy_runs (tenant_id, queued_at DESC, run_id DESC);
CREATE INDEX policy_runs_policy_idx ON scheduler.policy_runs (tenant_id, policy_id, queued_at DESC, run_id DESC);
CREATE INDEX policy_runs_status_idx ON scheduler.policy_runs (tenant_id, status, queued_at DESC, run_id DESC);
-- Metrics: queue depth only touches active runs; latency reads the most recent terminal runs. Both partial
-- indexes keep the cost independent of how much history the table holds.
CREATE INDEX policy_runs_active_idx ON scheduler.policy_runs (tenant_id, status)
  WHERE status IN ('queued', 'running');
CREATE INDEX policy_runs_terminal_idx ON scheduler.policy_runs (tenant_id, finished_at DESC)
  INCLUDE (queued_at, status)
  WHERE status IN ('succeeded', 'failed', 'cancelled');

-- Every change of a run's document, in order: the SSE stream replays from here (Last-Event-ID = id).
CREATE TABLE scheduler.policy_run_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL,
  run_id text NOT NULL,
  revision integer NOT NULL,
  status text NOT NULL,
  document jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX policy_run_events_run_idx ON scheduler.policy_run_events (tenant_id, run_id, id);
