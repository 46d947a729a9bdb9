import { describe, expect, it } from 'vitest';
import { unavailableDependency } from '../../api/errors.js';

/** An `Error` with extra properties, as clients and drivers throw them. */
const err = (message: string, props: Record<string, unknown> = {}) => Object.assign(new Error(message), props);

describe('unavailableDependency', () => {
  it('recognises Temporal gRPC UNAVAILABLE and DEADLINE_EXCEEDED, also when wrapped', () => {
    const grpc = err('14 UNAVAILABLE: No connection established', { code: 14, details: 'x', metadata: {} });
    expect(unavailableDependency(grpc)).toBe('temporal');
    const deadline = err('4 DEADLINE_EXCEEDED', { code: 4, details: '', metadata: {} });
    expect(unavailableDependency(new Error('start failed', { cause: deadline }))).toBe('temporal');
  });

  it.each([
    ['code 14 from a ServiceError', err('x', { name: 'ServiceError', code: 14 })],
    ['code 4 with gRPC details only', err('x', { code: 4, details: '' })],
    ['code 14 with gRPC metadata only', err('x', { code: 14, metadata: {} })],
    ['a ServiceError saying UNAVAILABLE', err('14 UNAVAILABLE: unreachable', { name: 'ServiceError' })],
    ['a ServiceError saying deadline_exceeded', err('rpc deadline_exceeded', { name: 'ServiceError' })],
    ['a ServiceError failing to connect', err('Failed to Connect to server', { name: 'ServiceError' })],
    ['a TransportError', err('tcp connect error', { name: 'TransportError' })],
    [
      'a TransportError two causes down',
      new Error('a', { cause: new Error('b', { cause: err('c', { name: 'TransportError' }) }) }),
    ],
  ])('answers temporal for %s', (_label, error) => {
    expect(unavailableDependency(error)).toBe('temporal');
  });

  it('recognises Postgres connection failures and shutdown codes', () => {
    expect(unavailableDependency(err('connect ECONNREFUSED', { code: 'ECONNREFUSED' }))).toBe('postgres');
    expect(unavailableDependency(err('terminating connection', { code: '57P01' }))).toBe('postgres');
    expect(unavailableDependency(new Error('Connection terminated unexpectedly'))).toBe('postgres');
  });

  it('answers postgres for every shutdown and connection-exception SQLSTATE', () => {
    for (const code of ['57P01', '57P02', '57P03', '08000', '08003', '08006']) {
      expect(unavailableDependency(err('db', { code })), code).toBe('postgres');
    }
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'])(
    'answers postgres for the socket error %s, also as a cause',
    (code) => {
      expect(unavailableDependency(err('socket', { code }))).toBe('postgres');
      expect(unavailableDependency(new Error('query failed', { cause: err('socket', { code }) }))).toBe('postgres');
    },
  );

  it.each([
    'Connection terminated due to connection timeout',
    'timeout exceeded when trying to connect',
    'Client has encountered a connection error and is not queryable',
  ])('answers postgres for the pg message %j', (message) => {
    expect(unavailableDependency(new Error(message))).toBe('postgres');
  });

  it('does not treat ordinary errors as unavailability', () => {
    expect(unavailableDependency(new Error('boom'))).toBeUndefined();
    expect(unavailableDependency(err('duplicate key', { code: '23505' }))).toBeUndefined();
    expect(unavailableDependency(err('not found', { code: 5, details: '', metadata: {} }))).toBeUndefined();
  });

  it.each([
    ['code 14 without any gRPC marker', err('fourteen', { code: 14 })],
    ['code 4 from another error type', err('four', { name: 'RangeError', code: 4 })],
    ['a ServiceError for another status', err('5 NOT_FOUND: workflow not found', { name: 'ServiceError', code: 5 })],
    ['UNAVAILABLE from something other than a ServiceError', new Error('14 UNAVAILABLE')],
    ['SQLSTATE 57P04 (not a shutdown)', err('db', { code: '57P04' })],
    ['SQLSTATE 57P00', err('db', { code: '57P00' })],
    ['a code that only starts like a connection exception', err('db', { code: '080061' })],
    ['a code that only ends like one', err('db', { code: 'X08006' })],
    ['a four-character 08 code', err('db', { code: '0800' })],
    ['a gRPC error with a socket code', err('grpc', { code: 'ECONNRESET', details: 'stream reset' })],
    ['a socket code in lower case', err('socket', { code: 'econnrefused' })],
    ['an empty object', {}],
    ['a string', 'Connection terminated'],
    ['null', null],
    ['undefined', undefined],
  ])('answers nothing for %s', (_label, error) => {
    expect(unavailableDependency(error)).toBeUndefined();
  });

  it('stops at a cycle of causes', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(unavailableDependency(a)).toBeUndefined();
    const self = new Error('self') as Error & { cause?: unknown };
    self.cause = self;
    expect(unavailableDependency(self)).toBeUndefined();
  });
});
