/** Assertion helpers shared by test files. */
import { expect } from 'vitest';

/** What `promise` rejects with, asserted to be an instance of `type` (fails the test when it resolves). */
export async function rejectionOf<T>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => T,
): Promise<T> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(type);
  return error as T;
}
