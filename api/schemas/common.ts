/** Schemas shared by several routes. */
import { Type } from '@sinclair/typebox';

/** `Idempotency-Key` request header: retries with the same key return the same run. */
export const IdempotencyKeyHeader = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$', description: 'Retries with the same key return the same run' }),
  ),
});

/** The largest value of a Postgres `integer` column: the `maximum` of every request integer stored in one. */
export const POSTGRES_INTEGER_MAX = 2_147_483_647;
