import { describe, expect, it } from 'vitest';
import { unavailableDependency } from '../../api/errors.js';

describe('unavailableDependency', () => {
  it('recognises Temporal gRPC UNAVAILABLE and DEADLINE_EXCEEDED, also when wrapped', () => {
    const grpc = Object.assign(new Error('14 UNAVAILABLE: No connection established'), {
      code: 14,
      details: 'x',
      metadata: {},
    });
    expect(unavailableDependency(grpc)).toBe('temporal');
    const deadline = Object.assign(new Error('4 DEADLINE_EXCEEDED'), { code: 4, details: '', metadata: {} });
    expect(unavailableDependency(new Error('start failed', { cause: deadline }))).toBe('temporal');
  });

  it('recognises Postgres connection failures and shutdown codes', () => {
    expect(unavailableDependency(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(
      'postgres',
    );
    expect(unavailableDependency(Object.assign(new Error('terminating connection'), { code: '57P01' }))).toBe(
      'postgres',
    );
    expect(unavailableDependency(new Error('Connection terminated unexpectedly'))).toBe('postgres');
  });

  it('does not treat ordinary errors as unavailability', () => {
    expect(unavailableDependency(new Error('boom'))).toBeUndefined();
    expect(unavailableDependency(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBeUndefined();
    expect(
      unavailableDependency(Object.assign(new Error('not found'), { code: 5, details: '', metadata: {} })),
    ).toBeUndefined();
  });
});
