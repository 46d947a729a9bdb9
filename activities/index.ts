import type { Logger } from '../core/logger.js';
import type { Pool } from '../db/pool.js';
import { createPackApprovalActivities, type PackApprovalDeps } from './pack-approval/index.js';
import { createPolicySimulationActivities } from './policy-simulation/index.js';
import type { TaskQueueName, WebhookConfig } from '../core/config.js';
import { createRetentionActivities } from './pack-approval/retention.js';
import type { RunnerMetrics } from '../workers/runner-metrics.js';
import { createEffectActivities } from './sagas/effects.js';
import type { EffectsManifestSource } from './sagas/effects-manifest.js';
import type { WorkflowEventPublisher } from './sagas/egress.js';
import { createSagaActivities } from './sagas/index.js';
import { createSelfCheckActivities } from './self-check/index.js';

/** Dependencies of every activity; they arrive through factories, never module globals. */
export interface ActivityDeps {
  pool: Pool;
  logger: Logger;
  policyEngineUrl: string;
  policyWebhook: WebhookConfig;
  /** Channels and settings of pack approvals; without them the pack-approval activities are not registered. */
  packApprovals?: Omit<PackApprovalDeps, 'pool' | 'logger'>;
  /**
   * The effects manifest (a source a reload replaces) and the Gateway; without them the `effects` queue hosts only
   * the self-check.
   */
  effects?: { manifest: EffectsManifestSource; gatewayUrl: string };
  /**
   * Publishes effect results, Gateway-command outcomes, saga facts and approval decisions to the workflow stream;
   * without it (`NATS_EGRESS=false`) nothing is published.
   */
  egress?: WorkflowEventPublisher | undefined;
  /** The Runner's metrics (effect results and durations, breaker states, saga timer lateness). */
  metrics?: RunnerMetrics | undefined;
}

/**
 * Merges the activity factories of the policy-simulation and pack-approval capabilities (and the self-check) into
 * one object, for tests that run a single worker with them. Workers register activities by queue
 * ({@link createActivitiesByQueue}).
 */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createSelfCheckActivities(),
    ...createRetentionActivities({ pool: deps.pool, logger: deps.logger }),
    ...createPolicySimulationActivities({
      pool: deps.pool,
      logger: deps.logger,
      policyEngineUrl: deps.policyEngineUrl,
      webhook: deps.policyWebhook,
    }),
    ...(deps.packApprovals
      ? createPackApprovalActivities({
          ...deps.packApprovals,
          pool: deps.pool,
          logger: deps.logger,
          egress: deps.egress,
        })
      : {}),
  };
}

/** Every activity of `createActivities`. */
export type Activities = ReturnType<typeof createActivities>;

/** The activities each task queue hosts. */
export type ActivitiesByQueue = Record<TaskQueueName, object>;

/**
 * The activities of each task queue: its own capability's, plus the self-check on every queue (the deep readiness
 * check runs it on each). `saga` hosts the saga bookkeeping (projection, unmatched events); `effects` only the
 * outbound calls of sagas (effects and Gateway commands), so a slow provider never holds up a saga's bookkeeping.
 */
export function createActivitiesByQueue(deps: ActivityDeps): ActivitiesByQueue {
  const { pool, logger, egress, metrics } = deps;
  const selfCheck = createSelfCheckActivities();
  return {
    'policy-simulation': {
      ...selfCheck,
      ...createPolicySimulationActivities({
        pool,
        logger,
        policyEngineUrl: deps.policyEngineUrl,
        webhook: deps.policyWebhook,
      }),
    },
    'pack-approval': {
      ...selfCheck,
      ...createRetentionActivities({ pool, logger }),
      ...(deps.packApprovals ? createPackApprovalActivities({ ...deps.packApprovals, pool, logger, egress }) : {}),
    },
    saga: { ...selfCheck, ...createSagaActivities({ pool, logger, egress, metrics }) },
    effects: {
      ...selfCheck,
      ...(deps.effects ? createEffectActivities({ ...deps.effects, logger, egress, metrics }) : {}),
    },
  };
}
