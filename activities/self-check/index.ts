import { Context } from '@temporalio/activity';

/** Input of {@link SelfCheckActivities.echoSelfCheck}. */
export interface EchoSelfCheckInput {
  sequence: number;
}

/** What a worker answers to a self-check activity. */
export interface EchoSelfCheckResult {
  sequence: number;
  /** Task queue of the worker that ran the activity. */
  taskQueue: string;
}

/** Activities of the self-check workflow. */
export interface SelfCheckActivities {
  /** Echoes its input and names the task queue that ran it; no side effects, hence idempotent. */
  echoSelfCheck: (input: EchoSelfCheckInput) => Promise<EchoSelfCheckResult>;
}

/** Creates the self-check activities (they need no dependencies). */
export function createSelfCheckActivities(): SelfCheckActivities {
  return {
    echoSelfCheck: (input) =>
      Promise.resolve({ sequence: input.sequence, taskQueue: Context.current().info.taskQueue }),
  };
}
