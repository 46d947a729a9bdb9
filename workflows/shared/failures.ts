/** Failure types shared across workflows and activities; compared on `ApplicationFailure.type`, never renamed. */
export const FailureType = {
  /** The workflow or activity input is invalid; retrying cannot help. */
  InvalidInput: 'InvalidInput',
  /** A self-check activity answered something other than what was asked. */
  SelfCheckMismatch: 'SelfCheckMismatch',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];
