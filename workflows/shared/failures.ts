import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

/** Failure types shared across workflows and activities; compared on `ApplicationFailure.type`, never renamed. */
export const FailureType = {
  /** The workflow or activity input is invalid; retrying cannot help. */
  InvalidInput: 'InvalidInput',
  /** A self-check activity answered something other than what was asked. */
  SelfCheckMismatch: 'SelfCheckMismatch',
  /** Postgres refused the data an activity wrote (a data exception or a constraint); retrying cannot help. */
  DataRejected: 'DataRejected',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** The message worth recording of a failure: an activity's own message rather than the "Activity task failed" wrapper. */
export function failureMessage(error: unknown): string {
  if (error instanceof ActivityFailure && error.cause) return error.cause.message;
  return error instanceof Error ? error.message : String(error);
}

/** Whether `error` is (or wraps, as an activity failure) an `ApplicationFailure` of `type`. */
export function isFailureOfType(error: unknown, type: string): boolean {
  const failure = error instanceof ActivityFailure ? error.cause : error;
  return failure instanceof ApplicationFailure && failure.type === type;
}
