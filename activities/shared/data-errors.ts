/**
 * Data errors are final: Postgres refusing a value (SQLSTATE class 22, data exception: out of range, invalid text,
 * untranslatable character…) or a constraint (class 23) refuses it again on every retry, so an activity that writes
 * such data fails non-retryably instead of keeping its workflow waiting forever.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { FailureType } from '../../workflows/shared/failures.js';

/** The SQLSTATE of a Postgres error caused by the data itself (classes 22 and 23), if `error` is one. */
export function dataErrorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code) ? code : undefined;
}

/**
 * Wraps every activity of `activities` so that a Postgres data error becomes a non-retryable
 * `ApplicationFailure` of type `DataRejected`, naming the SQLSTATE; every other error passes through unchanged.
 */
export function refuseDataErrors<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const wrapped: Record<string, (...args: never[]) => Promise<unknown>> = {};
  for (const [name, activity] of Object.entries(activities)) {
    wrapped[name] = async (...args) => {
      try {
        return await activity(...args);
      } catch (error) {
        const code = dataErrorCode(error);
        if (code === undefined) throw error;
        throw ApplicationFailure.create({
          message: `Postgres refused the data (SQLSTATE ${code}): ${(error as Error).message}`,
          type: FailureType.DataRejected,
          nonRetryable: true,
          cause: error as Error,
        });
      }
    };
  }
  return wrapped as T;
}
