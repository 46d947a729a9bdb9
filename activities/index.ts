import type { Logger } from '../core/logger.js';
import type { Pool } from '../db/pool.js';
import { createPackApprovalActivities, type PackApprovalDeps } from './pack-approval/index.js';
import { createPolicySimulationActivities } from './policy-simulation/index.js';
import type { WebhookConfig } from '../core/config.js';
import { createRetentionActivities } from './pack-approval/retention.js';
import { createSelfCheckActivities } from './self-check/index.js';

/** Dependencies of every activity; they arrive through factories, never module globals. */
export interface ActivityDeps {
  pool: Pool;
  logger: Logger;
  policyEngineUrl: string;
  policyWebhook: WebhookConfig;
  /** Channels and settings of pack approvals; without them the pack-approval activities are not registered. */
  packApprovals?: Omit<PackApprovalDeps, 'pool' | 'logger'>;
}

/** Merges the activity factories of every capability. */
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
      ? createPackApprovalActivities({ ...deps.packApprovals, pool: deps.pool, logger: deps.logger })
      : {}),
  };
}

/** Every activity the workers register. */
export type Activities = ReturnType<typeof createActivities>;
