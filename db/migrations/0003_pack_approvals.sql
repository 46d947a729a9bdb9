-- Pack approvals: current state (projection), append-only transitions, deliveries, routing rules, templates,
-- and the ingestion bookkeeping (accepted event ids, seen signature ids).
CREATE TABLE notify.pack_approvals (
  tenant_id text NOT NULL,
  run_id text NOT NULL,
  approval_id text NOT NULL,
  kind text NOT NULL,
  state text NOT NULL CHECK (state IN ('pending', 'held', 'approved', 'rejected', 'expired', 'cancelled', 'released')),
  plan_hash text NOT NULL,
  required_grants text[] NOT NULL DEFAULT '{}',
  step_ids text[] NOT NULL DEFAULT '{}',
  requested_by text NOT NULL,
  requested_at timestamptz NOT NULL,
  expires_at timestamptz,
  locale text NOT NULL,
  correlation_id text NOT NULL,
  workflow_id text NOT NULL,
  view jsonb NOT NULL,
  -- Number of transitions applied: a replayed or older write never overwrites a newer one.
  seq integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, run_id, approval_id)
);
CREATE INDEX pack_approvals_state_idx ON notify.pack_approvals (tenant_id, state, requested_at DESC);
CREATE INDEX pack_approvals_outstanding_idx ON notify.pack_approvals (state) WHERE state IN ('pending', 'held');
CREATE INDEX pack_approvals_retention_idx ON notify.pack_approvals (updated_at);

CREATE TABLE notify.pack_approval_transitions (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL,
  run_id text NOT NULL,
  approval_id text NOT NULL,
  seq integer NOT NULL,
  from_state text,
  to_state text NOT NULL,
  event_id text,
  actor text NOT NULL,
  reason text,
  correlation_id text NOT NULL,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, run_id, approval_id, seq)
);
CREATE INDEX pack_approval_transitions_time_idx ON notify.pack_approval_transitions (occurred_at);

-- Transitions are never rewritten (retention may delete whole old records).
CREATE FUNCTION notify.refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only (UPDATE refused)', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER pack_approval_transitions_no_update BEFORE UPDATE ON notify.pack_approval_transitions
  FOR EACH ROW EXECUTE FUNCTION notify.refuse_update();

CREATE TABLE notify.deliveries (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  idempotency_key text NOT NULL UNIQUE,
  tenant_id text NOT NULL,
  run_id text NOT NULL,
  approval_id text NOT NULL,
  channel text NOT NULL CHECK (channel IN ('email', 'webhook')),
  recipient text NOT NULL,
  reason text NOT NULL,
  template_id text NOT NULL,
  locale text NOT NULL,
  status text NOT NULL CHECK (status IN ('sent', 'failed')),
  detail text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_approval_idx ON notify.deliveries (tenant_id, run_id, approval_id);
CREATE INDEX deliveries_retention_idx ON notify.deliveries (created_at);

CREATE TABLE notify.rules (
  tenant_id text NOT NULL,
  rule_id text NOT NULL,
  name text NOT NULL,
  predicate text NOT NULL,
  channels jsonb NOT NULL,
  template_id text,
  enabled boolean NOT NULL DEFAULT true,
  priority integer NOT NULL DEFAULT 100,
  updated_by text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, rule_id)
);

CREATE TABLE notify.templates (
  tenant_id text NOT NULL,
  template_id text NOT NULL,
  channel text NOT NULL CHECK (channel IN ('email', 'webhook')),
  locale text NOT NULL,
  subject text,
  text_body text,
  html_body text,
  json_body text,
  updated_by text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, template_id, channel, locale)
);

-- Event ids already accepted (a repeat answers 200 duplicate) and signature ids already seen (a replay is refused).
CREATE TABLE notify.ingested_events (
  tenant_id text NOT NULL,
  event_id text NOT NULL,
  workflow_id text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX ingested_events_retention_idx ON notify.ingested_events (received_at);
CREATE TABLE notify.signature_ids (
  signature_id text PRIMARY KEY,
  seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signature_ids_seen_idx ON notify.signature_ids (seen_at);
