/** What the API is built from: its own module, so routes depend on it without depending on `app.ts`. */
import type { PayloadCodec } from '@temporalio/common';
import type { Registry } from 'prom-client';
import type { AppConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { Pool } from '../db/pool.js';
import type { TokenVerifier } from './plugins/auth.js';
import type { PolicyRunHub } from './sse/policy-run-hub.js';
import type { TemporalFacade } from './temporal/facade.js';

/** Everything the API needs, resolved; the server wires real ones, tests wire real ones too. */
export interface AppDeps {
  config: AppConfig;
  logger: Logger;
  pool: Pool;
  temporal: TemporalFacade;
  verifyToken: TokenVerifier;
  metrics: Registry;
  /** Prefix of task queue names (tests isolate runs with it; empty in production). */
  taskQueuePrefix: string;
  /** Fan-out of projection changes to SSE streams (one LISTEN connection per process). */
  policyRunHub: PolicyRunHub;
  /** Interval of SSE keep-alive comments (default 15 s). */
  sseKeepAliveMs?: number;
  /** Inbound event secrets (several during a rotation) and the approval-link secret. */
  packApprovalSecrets: { eventSecrets: string[]; linkSecret: string };
  /** The payload codec of the API's Temporal client (`core/payload-codec.ts`), for the codec endpoint. */
  payloadCodec?: PayloadCodec;
}

/** What `buildApp` is given: {@link AppDeps} with defaults for the metrics registry, prefix and secrets. */
export type BuildAppDeps = Omit<AppDeps, 'metrics' | 'policyRunHub' | 'packApprovalSecrets' | 'taskQueuePrefix'> & {
  metrics?: Registry;
  taskQueuePrefix?: string;
  /** Resolved from the configuration (local secret files or the environment) when absent. */
  packApprovalSecrets?: AppDeps['packApprovalSecrets'];
};
