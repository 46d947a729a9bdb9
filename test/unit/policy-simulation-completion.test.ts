import { readFileSync } from 'node:fs';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { buildCompletionPayload, latencySeconds } from '../../workflows/policy-simulation/completion.js';
import { isTerminalStatus } from '../../workflows/policy-simulation/state.js';
import { POLICY_RUN_STATUSES, type CompletionPayload } from '../../workflows/policy-simulation/definitions.js';
import { policyRunStatus as run } from '../support/fixtures.js';

const SAMPLE_PATH = new URL('../../samples/api/scheduler/policy-simulation-webhook.json', import.meta.url);

// JSON Schema of the webhook payload, derived from the types of definitions.ts.
const IsoInstant = Type.String({
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$',
});
const Verdict = Type.Union([Type.Literal('pass'), Type.Literal('warn'), Type.Literal('block')]);
const Count = Type.Integer({ minimum: 0 });
const VerdictCounts = Type.Object({ pass: Count, warn: Count, block: Count }, { additionalProperties: false });
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const ResultSummary = Type.Object(
  {
    activePolicyVersion: Type.Integer({ minimum: 1 }),
    candidatePolicyVersion: Type.Integer({ minimum: 1 }),
    active: VerdictCounts,
    candidate: VerdictCounts,
    transitions: Type.Record(Type.String({ pattern: '^(pass|warn|block)->(pass|warn|block)$' }), Count),
    changed: Count,
    changes: Type.Array(
      Type.Object(
        {
          sbomId: Type.String({ minLength: 1 }),
          component: Type.String({ minLength: 1 }),
          advisoryId: Type.String({ minLength: 1 }),
          severity: Type.String({ minLength: 1 }),
          from: Verdict,
          to: Verdict,
          explain: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
const Simulation = Type.Object(
  {
    runId: Type.String({ minLength: 1 }),
    tenantId: Type.String({ minLength: 1 }),
    policyId: Type.String({ minLength: 1 }),
    policyVersion: Type.Integer({ minimum: 1 }),
    mode: Type.Literal('simulate'),
    status: Type.Union(POLICY_RUN_STATUSES.map((s) => Type.Literal(s))),
    priority: Type.Union([Type.Literal('low'), Type.Literal('normal'), Type.Literal('high')]),
    queuedAt: IsoInstant,
    startedAt: Nullable(IsoInstant),
    finishedAt: Nullable(IsoInstant),
    attempts: Count,
    inputs: Type.Object(
      {
        sbomSet: Type.Array(Type.String()),
        advisoryCursor: Type.Optional(Type.String()),
        vexCursor: Type.Optional(Type.String()),
        environment: Type.Optional(Type.Record(Type.String(), Type.String())),
        captureExplain: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
    stats: Nullable(
      Type.Object(
        { sboms: Count, components: Count, findings: Count, durationMs: Count },
        { additionalProperties: false },
      ),
    ),
    result: Nullable(ResultSummary),
    error: Nullable(Type.String()),
    cancellationRequested: Type.Boolean(),
    cancellationReason: Nullable(Type.String()),
    workflowId: Type.String({ minLength: 1 }),
    metadata: Type.Record(Type.String(), Type.String()),
  },
  { additionalProperties: false },
);
const CompletionPayloadSchema = Type.Object(
  {
    tenantId: Type.String({ minLength: 1 }),
    simulation: Simulation,
    // The specification: "`result`: `succeeded`, `failed`, `cancelled` … Terminal webhooks are emitted only for the
    // first three." The verdict diff is `simulation.result`.
    result: Type.Union([Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('cancelled')]),
    observedAt: IsoInstant,
    latencySeconds: Type.Number({ minimum: 0 }),
    reason: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
// Compile-time: the schema describes exactly the TypeScript type (both directions).
const _schemaAcceptsType = (p: CompletionPayload): Static<typeof CompletionPayloadSchema> => p;
const _typeAcceptsSchema = (p: Static<typeof CompletionPayloadSchema>): CompletionPayload => p;

describe('isTerminalStatus', () => {
  it('is true for succeeded, failed and cancelled only', () => {
    expect(POLICY_RUN_STATUSES.filter((s) => isTerminalStatus(s))).toEqual(['succeeded', 'failed', 'cancelled']);
    expect(isTerminalStatus('bogus')).toBe(false);
  });
});

describe('latencySeconds', () => {
  it('uses finishedAt − queuedAt when both exist, whatever observedAt says', () => {
    expect(latencySeconds(run(), '2025-10-26T15:00:00.000Z')).toBe(3.25);
  });

  it('rounds to 4 decimal places, keeping sub-millisecond precision of the timestamps', () => {
    const sim = run({ queuedAt: '2025-10-26T14:00:00Z', finishedAt: '2025-10-26T14:00:01.23456789Z' });
    expect(latencySeconds(sim, '2025-10-26T14:00:02Z')).toBe(1.2346);
    const micro = run({ queuedAt: '2025-10-26T14:00:00.000001Z', finishedAt: '2025-10-26T14:00:00.000051Z' });
    expect(latencySeconds(micro, '2025-10-26T14:00:02Z')).toBe(0.0001);
  });

  it('handles timezone offsets', () => {
    const sim = run({ queuedAt: '2025-10-26T16:00:00.000+02:00', finishedAt: '2025-10-26T14:00:10.5Z' });
    expect(latencySeconds(sim, '2025-10-26T14:00:20Z')).toBe(10.5);
  });

  it('falls back to observedAt − queuedAt when finishedAt is missing', () => {
    expect(latencySeconds(run({ finishedAt: null }), '2025-10-26T14:00:07.12345Z')).toBe(7.1235);
  });

  it('is 0 when queuedAt is missing too, and never negative', () => {
    expect(latencySeconds({ queuedAt: null, finishedAt: null }, '2025-10-26T14:00:07Z')).toBe(0);
    expect(latencySeconds(run({ queuedAt: '' }), '2025-10-26T14:00:07Z')).toBe(0);
    expect(latencySeconds(run({ finishedAt: '2025-10-26T13:59:59Z' }), '2025-10-26T14:00:07Z')).toBe(0);
  });
});

describe('buildCompletionPayload', () => {
  const observedAt = '2025-10-26T14:00:03.300Z';

  it('builds the succeeded payload without a reason key', () => {
    const sim = run();
    const payload = buildCompletionPayload(sim, observedAt);
    expect(payload).toEqual({
      tenantId: 'tenant-a',
      simulation: sim,
      result: 'succeeded',
      observedAt: sim.finishedAt,
      latencySeconds: 3.25,
    });
    expect(Object.keys(payload)).not.toContain('reason');
    expect(JSON.parse(JSON.stringify(payload))).not.toHaveProperty('reason');
  });

  it('carries the error of a failure as reason', () => {
    const payload = buildCompletionPayload(
      run({ status: 'failed', result: null, error: 'Policy Engine rejected: 422' }),
      observedAt,
    );
    expect(payload.reason).toBe('Policy Engine rejected: 422');
    expect(payload.result).toBe('failed');
  });

  it('is the same document whenever it is built: observedAt is the run’s finishedAt', () => {
    const sim = run({ status: 'cancelled', cancellationReason: 'x', result: null });
    const early = buildCompletionPayload(sim, '2025-10-26T14:00:04Z');
    const late = buildCompletionPayload(sim, '2025-10-27T09:00:00Z');
    expect(early).toEqual(late);
    expect(early).toMatchObject({ result: 'cancelled', observedAt: sim.finishedAt });
  });

  it('carries the cancellation reason of a cancellation as reason', () => {
    const sim = run({
      status: 'cancelled',
      result: null,
      finishedAt: null,
      cancellationRequested: true,
      cancellationReason: 'superseded by v3',
    });
    const payload = buildCompletionPayload(sim, observedAt);
    expect(payload.reason).toBe('superseded by v3');
    expect(payload.result).toBe('cancelled');
    // Without finishedAt, the caller's observation instant stands in for it.
    expect(payload.observedAt).toBe(observedAt);
    expect(payload.latencySeconds).toBe(3.3);
  });

  it('omits reason when a failure or cancellation has none recorded', () => {
    expect(Object.keys(buildCompletionPayload(run({ status: 'failed', error: null }), observedAt))).not.toContain(
      'reason',
    );
  });

  it.each(['queued', 'running'] as const)('throws for a %s run', (status) => {
    expect(() => buildCompletionPayload(run({ status, finishedAt: null }), observedAt)).toThrow(/terminal/);
  });

  it('produces payloads that validate against the schema for every terminal status', () => {
    for (const sim of [
      run(),
      run({ status: 'failed', error: 'boom', result: null }),
      run({ status: 'cancelled', cancellationReason: 'x', result: null }),
    ]) {
      expect(Value.Check(CompletionPayloadSchema, buildCompletionPayload(sim, observedAt))).toBe(true);
    }
  });
});

describe('the committed sample payload', () => {
  const sample = JSON.parse(readFileSync(SAMPLE_PATH, 'utf8')) as CompletionPayload;

  it('is exactly what buildCompletionPayload makes of its own simulation', () => {
    expect(buildCompletionPayload(sample.simulation, sample.observedAt)).toEqual(sample);
  });

  it('validates against the JSON Schema of the payload', () => {
    const errors = [...Value.Errors(CompletionPayloadSchema, sample)].map((e) => `${e.path}: ${e.message}`);
    expect(errors).toEqual([]);
    expect(Value.Check(CompletionPayloadSchema, sample)).toBe(true);
    // The schema is not vacuous.
    expect(Value.Check(CompletionPayloadSchema, { ...sample, latencySeconds: -1 })).toBe(false);
    expect(Value.Check(CompletionPayloadSchema, { ...sample, unexpected: true })).toBe(false);
    expect(
      Value.Check(CompletionPayloadSchema, { ...sample, simulation: { ...sample.simulation, status: 'done' } }),
    ).toBe(false);
  });

  it('is a succeeded verdict diff with consistent counts and a 4-decimal latency', () => {
    expect(sample.simulation.status).toBe('succeeded');
    expect(sample).not.toHaveProperty('reason');
    expect(String(sample.latencySeconds)).toMatch(/^\d+\.\d{4}$/);
    expect(sample.result).toBe('succeeded');
    const result = sample.simulation.result;
    if (!result) throw new Error('the sample must carry a verdict diff');
    expect(result.transitions['pass->block']).toBe(2);
    // candidate = active + transitions, and every transition is listed in changes.
    const expected = { ...result.active };
    let changed = 0;
    for (const [transition, count] of Object.entries(result.transitions)) {
      const [from, to] = transition.split('->') as [keyof typeof expected, keyof typeof expected];
      expected[from] -= count;
      expected[to] += count;
      changed += count;
      expect(result.changes.filter((c) => c.from === from && c.to === to)).toHaveLength(count);
    }
    expect(result.candidate).toEqual(expected);
    expect(result.changed).toBe(changed);
  });
});

describe('latencySeconds: timestamps as peers write them', () => {
  const observedAt = '2025-10-26T14:00:20Z';

  it('keeps the sub-millisecond part of a timestamp with an offset', () => {
    const sim = run({ queuedAt: '2025-10-26T16:00:00.0009+02:00', finishedAt: '2025-10-26T14:00:01Z' });
    expect(latencySeconds(sim, observedAt)).toBe(0.9991);
  });

  it('reads timestamps with surrounding whitespace, with and without a fraction', () => {
    const sim = run({ queuedAt: ' 2025-10-26T14:00:00Z ', finishedAt: '\t2025-10-26T14:00:01.5Z\n' });
    expect(latencySeconds(sim, observedAt)).toBe(1.5);
  });

  it('reads a comma as the decimal separator', () => {
    expect(
      latencySeconds(run({ queuedAt: '2025-10-26T14:00:00,25Z', finishedAt: '2025-10-26T14:00:01Z' }), observedAt),
    ).toBe(0.75);
  });

  it('reads timestamps in other formats Date.parse knows', () => {
    const sim = run({ queuedAt: 'Sun, 26 Oct 2025 14:00:00 GMT', finishedAt: 'Sun, 26 Oct 2025 14:00:05 GMT' });
    expect(latencySeconds(sim, observedAt)).toBe(5);
  });

  it('falls back to observedAt when finishedAt does not parse', () => {
    expect(
      latencySeconds(run({ queuedAt: '2025-10-26T14:00:00Z', finishedAt: '2025-10-26T99:00:00Z' }), observedAt),
    ).toBe(20);
    expect(latencySeconds(run({ queuedAt: '2025-10-26T14:00:00Z', finishedAt: 'soon' }), observedAt)).toBe(20);
    expect(latencySeconds(run({ queuedAt: 'earlier' }), observedAt)).toBe(0);
  });
});

describe('buildCompletionPayload: refusals', () => {
  it('names the run and the terminal statuses when the run is not terminal', () => {
    expect(() => buildCompletionPayload(run({ status: 'running', finishedAt: null }), '2025-10-26T14:00:03Z')).toThrow(
      'Policy run run-1 is running: completion payloads exist for terminal runs only (succeeded, failed, cancelled)',
    );
  });
});
