/** Schemas of the operational routes (/health, /ready, /info). */
import { Type, type Static } from '@sinclair/typebox';

export const HealthResponse = Type.Object({ status: Type.Literal('ok'), uptimeSeconds: Type.Number() });

/** One dependency's check: up or down, how long it took, and why it is down. */
export const DependencyCheck = Type.Object({
  status: Type.Union([Type.Literal('up'), Type.Literal('down')]),
  latencyMs: Type.Number(),
  error: Type.Optional(Type.String()),
});

export const ReadyQuery = Type.Object({
  deep: Type.Optional(Type.Boolean({ description: 'Also run a self-check workflow on every served task queue' })),
});

export const ReadyResponse = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
  checks: Type.Object({
    postgres: DependencyCheck,
    temporal: DependencyCheck,
    selfCheck: Type.Optional(Type.Record(Type.String(), DependencyCheck, { description: 'Per task queue' })),
  }),
});
export type ReadyResponse = Static<typeof ReadyResponse>;

export const InfoResponse = Type.Object({
  name: Type.String(),
  version: Type.String(),
  node: Type.String(),
  temporal: Type.Object({ address: Type.String(), namespace: Type.String() }),
  taskQueues: Type.Array(Type.String()),
  searchAttributes: Type.Array(Type.String()),
});
