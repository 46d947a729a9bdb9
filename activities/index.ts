import type { Logger } from '../core/logger.js';
import type { Pool } from '../db/pool.js';
import { createSelfCheckActivities } from './self-check/index.js';

/** Dependencies of every activity; they arrive through factories, never module globals. */
export interface ActivityDeps {
  pool: Pool;
  logger: Logger;
}

/** Merges the activity factories of every capability. */
export function createActivities(_deps: ActivityDeps) {
  return {
    ...createSelfCheckActivities(),
  };
}

/** Every activity the workers register. */
export type Activities = ReturnType<typeof createActivities>;
