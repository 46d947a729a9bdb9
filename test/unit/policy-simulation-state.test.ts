import { describe, expect, it } from 'vitest';
import type { PolicySimulationInput } from '../../workflows/policy-simulation/definitions.js';
import {
  cancellationRequestedStatus,
  cancelledStatus,
  failedStatus,
  invalidInputReason,
  isTerminalStatus,
  queuedStatus,
  runningStatus,
  storableStatus,
  succeededStatus,
} from '../../workflows/policy-simulation/state.js';
import { SIMULATION_RESULT as result, SIMULATION_STATS as stats } from '../support/fixtures.js';

const input: PolicySimulationInput = {
  tenantId: 'acme',
  runId: 'r1',
  policyId: 'p',
  policyVersion: 2,
  inputs: { sbomSet: ['a'] },
};
const queued = queuedStatus(
  input,
  { runId: 'r1', workflowId: 'policy-simulation/acme/r1' },
  '2026-01-01T00:00:00.000Z',
);
describe('policy simulation state', () => {
  it('starts queued with defaults', () => {
    expect(queued).toMatchObject({
      status: 'queued',
      priority: 'normal',
      attempts: 0,
      mode: 'simulate',
      metadata: {},
      startedAt: null,
    });
  });

  it('keeps the first start time and the highest attempt across retries', () => {
    const first = runningStatus(queued, '2026-01-01T00:00:01.000Z', 1);
    const retried = runningStatus(first, '2026-01-01T00:00:09.000Z', 3);
    expect(retried).toMatchObject({ status: 'running', startedAt: '2026-01-01T00:00:01.000Z', attempts: 3 });
    expect(runningStatus(retried, 'later', 2).attempts).toBe(3);
  });

  it('never leaves a terminal state through a late running write', () => {
    const done = failedStatus(queued, 'boom', '2026-01-01T00:00:02.000Z', 2);
    expect(runningStatus(done, 'x', 5)).toBe(done);
    expect(done).toMatchObject({ status: 'failed', error: 'boom', attempts: 2 });
  });

  it('records result, stats and attempts on success', () => {
    const running = runningStatus(queued, '2026-01-01T00:00:01.000Z', 1);
    const done = succeededStatus(running, { stats, result, attempts: 2 }, '2026-01-01T00:00:05.000Z');
    expect(done).toMatchObject({
      status: 'succeeded',
      stats,
      result,
      attempts: 2,
      finishedAt: '2026-01-01T00:00:05.000Z',
    });
  });

  it('keeps the requester’s cancellation reason', () => {
    const requested = cancellationRequestedStatus(queued, 'wrong version');
    expect(requested).toMatchObject({
      status: 'queued',
      cancellationRequested: true,
      cancellationReason: 'wrong version',
    });
    expect(cancelledStatus(requested, 'fallback', 'now')).toMatchObject({
      status: 'cancelled',
      cancellationReason: 'wrong version',
    });
    expect(cancelledStatus(queued, 'Cancelled through Temporal', 'now').cancellationReason).toBe(
      'Cancelled through Temporal',
    );
  });

  it('classifies terminal statuses and explains invalid input', () => {
    expect(['queued', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => isTerminalStatus(s as never))).toEqual([
      false,
      false,
      true,
      true,
      true,
    ]);
    expect(invalidInputReason(input)).toBeUndefined();
    expect(invalidInputReason({ ...input, policyVersion: 0 })).toMatch(/policyVersion/);
    expect(invalidInputReason({ ...input, inputs: { sbomSet: [] } })).toMatch(/sbomSet/);
  });
});

describe('policy simulation state: documents a caller reads', () => {
  it('queues the whole request: ids, policy, inputs, priority and metadata, nothing started or cancelled', () => {
    const doc = queuedStatus(
      { ...input, priority: 'high', metadata: { ticket: 'SEC-42' } },
      { runId: 'r1', workflowId: 'policy-simulation/acme/r1' },
      '2026-01-01T00:00:00.000Z',
    );
    expect(doc).toEqual({
      runId: 'r1',
      tenantId: 'acme',
      policyId: 'p',
      policyVersion: 2,
      mode: 'simulate',
      status: 'queued',
      priority: 'high',
      queuedAt: '2026-01-01T00:00:00.000Z',
      startedAt: null,
      finishedAt: null,
      attempts: 0,
      inputs: { sbomSet: ['a'] },
      stats: null,
      result: null,
      error: null,
      cancellationRequested: false,
      cancellationReason: null,
      workflowId: 'policy-simulation/acme/r1',
      metadata: { ticket: 'SEC-42' },
    });
  });

  it('marks a run cancelled without an earlier request as a requested cancellation', () => {
    expect(cancelledStatus(queued, 'Cancelled through Temporal', '2026-01-01T00:00:03.000Z')).toMatchObject({
      status: 'cancelled',
      cancellationRequested: true,
      finishedAt: '2026-01-01T00:00:03.000Z',
    });
  });
});

describe('policy simulation state: input validation', () => {
  it('accepts policy version 1 and refuses 0, negative and fractional versions', () => {
    expect(invalidInputReason({ ...input, policyVersion: 1 })).toBeUndefined();
    for (const policyVersion of [0, -1, 1.5, Number.NaN])
      expect(invalidInputReason({ ...input, policyVersion }), String(policyVersion)).toBe(
        'policyVersion must be a positive integer',
      );
  });

  it('requires a tenant and a policy', () => {
    expect(invalidInputReason({ ...input, tenantId: '' })).toBe('tenantId is required');
    expect(invalidInputReason({ ...input, policyId: '' })).toBe('policyId is required');
  });

  it('requires a non-empty SBOM set, also when inputs are missing altogether', () => {
    expect(invalidInputReason({ ...input, inputs: { sbomSet: [] } })).toBe('inputs.sbomSet must not be empty');
    expect(invalidInputReason({ ...input, inputs: undefined } as unknown as PolicySimulationInput)).toBe(
      'inputs.sbomSet must not be empty',
    );
  });
});

describe('policy simulation state: a document Postgres refused', () => {
  const refused = 'Postgres refused the run: invalid byte sequence';

  it('ends failed with the refusal as error, dropping the outcome and keeping the first finish time', () => {
    const done = succeededStatus(queued, { stats, result, attempts: 1 }, '2026-01-01T00:00:05.000Z');
    expect(storableStatus(done, refused, '2026-01-01T00:00:09.000Z')).toEqual({
      ...done,
      status: 'failed',
      error: refused,
      stats: null,
      result: null,
      finishedAt: '2026-01-01T00:00:05.000Z',
    });
    expect(storableStatus(queued, refused, '2026-01-01T00:00:09.000Z').finishedAt).toBe('2026-01-01T00:00:09.000Z');
  });

  it('removes NUL characters from every string, keys and nested values included', () => {
    const doc = {
      ...queued,
      tenantId: 'ac\u0000me',
      inputs: { sbomSet: ['sbom-\u0000a', 'sbom-b'], environment: { 're\u0000gion': 'eu\u0000-1' } },
      metadata: { 'tic\u0000ket': 'SEC-\u000042' },
    };
    const stored = storableStatus(doc, 'bad \u0000 byte', '2026-01-01T00:00:09.000Z');
    expect(stored).toMatchObject({
      tenantId: 'acme',
      inputs: { sbomSet: ['sbom-a', 'sbom-b'], environment: { region: 'eu-1' } },
      metadata: { ticket: 'SEC-42' },
      error: 'bad  byte',
      attempts: 0,
      cancellationRequested: false,
      startedAt: null,
    });
    expect(JSON.stringify(stored)).not.toContain('\\u0000');
  });

  it('brings the policy version into the range of a Postgres integer', () => {
    const versionOf = (policyVersion: number) =>
      storableStatus({ ...queued, policyVersion }, refused, '2026-01-01T00:00:09.000Z').policyVersion;
    expect(versionOf(7)).toBe(7);
    expect(versionOf(2_147_483_647)).toBe(2_147_483_647);
    expect(versionOf(2_147_483_648)).toBe(2_147_483_647);
    expect(versionOf(0)).toBe(1);
    expect(versionOf(-5)).toBe(1);
    expect(versionOf(1.5)).toBe(1);
    expect(versionOf(Number.NaN)).toBe(1);
  });
});
