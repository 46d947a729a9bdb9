import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyEngineData, simulate } from '../../policy-engine/evaluate.js';
import { startPolicyEngine, type RunningPolicyEngine } from '../../policy-engine/server.js';

// The real engine over HTTP on a free loopback port, with the bundled sample data the product runs with.
describe('policy engine server', () => {
  let engine: RunningPolicyEngine;
  const data = loadPolicyEngineData();

  beforeAll(async () => {
    engine = await startPolicyEngine({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await engine?.close();
  });

  const body = {
    tenantId: 'local',
    runId: 'run-1',
    policyId: 'baseline-security',
    policyVersion: 3,
    sbomSet: ['sbom-payments-api', 'sbom-web-frontend'],
    advisoryCursor: 'adv-2025-06-01',
    vexCursor: 'vex-2025-06-01',
    environment: { stage: 'prod' },
    captureExplain: true,
  };

  const post = (payload: unknown, headers: Record<string, string> = {}) =>
    fetch(`${engine.url}/api/v1/simulations/evaluate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });

  it('listens on an ephemeral loopback port', () => {
    expect(engine.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('evaluates a simulation and answers the engine’s result with stats', async () => {
    const response = await post(body);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const answer = (await response.json()) as ReturnType<typeof simulate>;
    const expected = simulate(body, data);
    expect(answer).toEqual({
      stats: { ...expected.stats, durationMs: expect.any(Number) as number },
      result: expected.result,
    });
    expect(answer.stats).toMatchObject({ sboms: 2, components: 23, findings: 31 });
    expect(answer.result).toMatchObject({ activePolicyVersion: 2, candidatePolicyVersion: 3 });
    expect(answer.result.changed).toBeGreaterThan(0);
    expect(answer.result.changes.every((c) => typeof c.explain === 'string')).toBe(true);
  });

  it('echoes the Idempotency-Key header, on success and on errors', async () => {
    const ok = await post(body, { 'Idempotency-Key': 'sim-local-run-1' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('idempotency-key')).toBe('sim-local-run-1');
    const notFound = await post({ ...body, policyId: 'nope' }, { 'Idempotency-Key': 'sim-local-run-2' });
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get('idempotency-key')).toBe('sim-local-run-2');
    const without = await post(body);
    expect(without.headers.get('idempotency-key')).toBeNull();
  });

  it('answers 400 ValidationFailed for an invalid body', async () => {
    const { policyId: _omitted, ...withoutPolicy } = body;
    for (const invalid of [
      withoutPolicy,
      { ...body, policyVersion: '3' },
      { ...body, policyVersion: 0 },
      { ...body, sbomSet: [] },
      { ...body, captureExplain: 'yes' },
    ]) {
      const response = await post(invalid);
      expect(response.status, JSON.stringify(invalid)).toBe(400);
      const answer = (await response.json()) as { error: string; message: string; errors: { path: string }[] };
      expect(answer.error).toBe('ValidationFailed');
      expect(answer.message).toEqual(expect.any(String));
    }
    const missing = (await (await post(withoutPolicy)).json()) as { errors: { path: string }[] };
    expect(missing.errors.map((e) => e.path)).toContain('body.policyId');
  });

  it('answers 400 for malformed JSON', async () => {
    const response = await post('{"tenantId":');
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'BadRequest', message: expect.any(String) as string });
  });

  it('answers 404 naming the unknown policy, version or SBOMs', async () => {
    const cases = [
      [{ policyId: 'nope' }, 'UnknownPolicy', 'unknown policy "nope"'],
      [
        { policyVersion: 42 },
        'UnknownPolicyVersion',
        'policy "baseline-security" has no version 42 (versions: 1, 2, 3, 4)',
      ],
      [{ sbomSet: ['sbom-payments-api', 'sbom-ghost'] }, 'UnknownSbom', 'unknown SBOM: "sbom-ghost"'],
    ] as const;
    for (const [patch, error, message] of cases) {
      const response = await post({ ...body, ...patch });
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error, message });
    }
  });

  it('lists the policies with their versions and the active one', async () => {
    const response = await fetch(`${engine.url}/api/v1/policies`);
    expect(response.status).toBe(200);
    const { policies } = (await response.json()) as {
      policies: { id: string; activeVersion: number; versions: { version: number; active: boolean }[] }[];
    };
    expect(policies.map((p) => [p.id, p.activeVersion, p.versions.map((v) => v.version)])).toEqual([
      ['baseline-security', 2, [1, 2, 3, 4]],
      ['kev-exploitability', 1, [1, 2]],
      ['strict-release-gate', 1, [1, 2, 3]],
      ['advisory-only', 1, [1]],
    ]);
  });

  it('answers health and a JSON 404 for unknown routes', async () => {
    expect(await (await fetch(`${engine.url}/health`)).json()).toEqual({ status: 'ok', policies: 4, sboms: 6 });
    const missing = await fetch(`${engine.url}/api/v1/nothing`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: 'NotFound' });
  });
});
