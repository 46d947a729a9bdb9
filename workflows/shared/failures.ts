import { ActivityFailure } from '@temporalio/workflow';

/** Failure types shared across workflows and activities; compared on `ApplicationFailure.type`, never renamed. */
export const FailureType = {
  /** The workflow or activity input is invalid; retrying cannot help. */
  InvalidInput: 'InvalidInput',
  /** A self-check activity answered something other than what was asked. */
  SelfCheckMismatch: 'SelfCheckMismatch',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** The message worth recording of a failure: an activity's own message rather than the "Activity task failed" wrapper. */
export function failureMessage(error: unknown): string {
  if (error instanceof ActivityFailure && error.cause) return error.cause.message;
  return error instanceof Error ? error.message : String(error);
}
