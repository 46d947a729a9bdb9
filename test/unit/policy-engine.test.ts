import { describe, expect, it } from 'vitest';
import {
  createPolicyEngineData,
  evaluateFinding,
  listPolicies,
  listSboms,
  loadPolicyEngineData,
  MAX_CHANGES,
  parseFindingsData,
  parsePolicyCatalogue,
  PolicyEngineDataError,
  PolicyEngineError,
  simulate,
  type PolicyEngineData,
  type SimulationRequest,
} from '../../policy-engine/evaluate.js';
import type { Finding, PolicyRules } from '../../policy-engine/model.js';

/** A finding with harmless defaults; each test states only what matters to it. */
function finding(overrides: Partial<Finding> = {}): Finding {
  return {
    advisoryId: 'CVE-2024-0001',
    severity: 'low',
    cvss: 3.0,
    kev: false,
    vex: 'affected',
    fixAvailable: true,
    ...overrides,
  };
}

/** Rules that match nothing; each test adds the rule under test. */
function rules(overrides: Partial<PolicyRules> = {}): PolicyRules {
  return { block: {}, warn: {}, honorVex: [], ignoreWithoutFix: false, ...overrides };
}

describe('evaluateFinding', () => {
  it('blocks a CISA KEV finding under `block.kev`, whatever its severity', () => {
    const verdict = evaluateFinding(rules({ block: { kev: true } }), finding({ severity: 'low', kev: true }));
    expect(verdict).toEqual({ verdict: 'block', rule: 'block', explain: 'block: listed in CISA KEV (block.kev)' });
  });

  it('does not treat `kev: false` as a criterion', () => {
    expect(evaluateFinding(rules({ block: { kev: false } }), finding({ kev: true })).verdict).toBe('pass');
    expect(evaluateFinding(rules({ block: { kev: false } }), finding({ kev: false })).verdict).toBe('pass');
  });

  it('passes a VEX not_affected finding when the policy honours it, and blocks it when not', () => {
    const critical = finding({ severity: 'critical', cvss: 9.8, kev: true, vex: 'not_affected' });
    const block = { severities: ['critical' as const], kev: true };
    expect(evaluateFinding(rules({ block, honorVex: ['not_affected'] }), critical)).toEqual({
      verdict: 'pass',
      rule: 'vex',
      explain: 'pass: VEX status not_affected is honoured (honorVex)',
    });
    expect(evaluateFinding(rules({ block, honorVex: ['fixed'] }), critical).verdict).toBe('block');
  });

  it('applies `cvssAtLeast` inclusively', () => {
    const policy = rules({ block: { cvssAtLeast: 7.0 } });
    expect(evaluateFinding(policy, finding({ cvss: 7.0 }))).toEqual({
      verdict: 'block',
      rule: 'block',
      explain: 'block: CVSS 7 >= 7 (block.cvssAtLeast)',
    });
    expect(evaluateFinding(policy, finding({ cvss: 6.9 })).verdict).toBe('pass');
  });

  it('warns on the warn severities and passes the others by default', () => {
    const policy = rules({ block: { severities: ['critical'] }, warn: { severities: ['high', 'medium'] } });
    expect(evaluateFinding(policy, finding({ severity: 'medium' }))).toEqual({
      verdict: 'warn',
      rule: 'warn',
      explain: 'warn: severity medium (warn.severities)',
    });
    expect(evaluateFinding(policy, finding({ severity: 'critical' })).verdict).toBe('block');
    expect(evaluateFinding(policy, finding({ severity: 'low' }))).toEqual({
      verdict: 'pass',
      rule: 'default',
      explain: 'pass: no block or warn criterion matched',
    });
  });

  it('never matches `epssAtLeast` for a finding without an EPSS score', () => {
    const policy = rules({ block: { epssAtLeast: 0 } });
    expect(evaluateFinding(policy, finding({ epss: 0 })).verdict).toBe('block');
    expect(evaluateFinding(policy, finding()).verdict).toBe('pass');
  });

  it('lets block win over warn and lists every block criterion that matched', () => {
    const policy = rules({
      block: { kev: true, severities: ['critical'], cvssAtLeast: 9, epssAtLeast: 0.5 },
      warn: { severities: ['critical'] },
    });
    const log4shell = finding({ severity: 'critical', cvss: 10, kev: true, epss: 0.975 });
    expect(evaluateFinding(policy, log4shell).explain).toBe(
      'block: listed in CISA KEV (block.kev); severity critical (block.severities); ' +
        'CVSS 10 >= 9 (block.cvssAtLeast); EPSS 0.975 >= 0.5 (block.epssAtLeast)',
    );
  });

  it('passes findings without a fix under `ignoreWithoutFix`, after honouring VEX', () => {
    const policy = rules({ block: { kev: true }, honorVex: ['not_affected'], ignoreWithoutFix: true });
    expect(evaluateFinding(policy, finding({ kev: true, fixAvailable: false })).rule).toBe('withoutFix');
    expect(evaluateFinding(policy, finding({ kev: true, fixAvailable: false, vex: 'not_affected' })).rule).toBe('vex');
    expect(evaluateFinding(policy, finding({ kev: true, fixAvailable: true })).verdict).toBe('block');
    expect(
      evaluateFinding({ ...policy, ignoreWithoutFix: false }, finding({ kev: true, fixAvailable: false })),
    ).toEqual({ verdict: 'block', rule: 'block', explain: 'block: listed in CISA KEV (block.kev)' });
  });
});

/*
 * A small inline dataset whose verdicts are worked out by hand below, independently of the engine.
 *
 *            finding                                             v1 (active)   v2            v3
 *  sbom-a  alpha F1 CVE-2024-0001 critical 9.8 KEV epss .9        block         block         block (kev)
 *          alpha F2 CVE-2024-0002 high 8.1 epss .02               warn (high)   block (cvss)  warn (high)
 *          alpha F3 CVE-2024-0003 medium 5.0 not_affected         pass (vex)    pass (vex)    pass (vex)
 *          beta  F4 CVE-2024-0004 high 7.5 epss .6 no fix         warn (high)   warn (high)   pass (no fix)
 *          beta  F5 CVE-2024-0005 low 3.1                         pass          warn (low)    pass
 *  sbom-b  gamma F6 CVE-2024-0006 critical 9.1 vex fixed          pass (vex)    block (crit)  pass (vex)
 *          gamma F7 CVE-2024-0007 medium 6.5 KEV epss .7          block (kev)   block (kev)   block (kev)
 *          gamma F8 GHSA-…        medium 4.3 investigating no fix warn (medium) warn (medium) pass (no fix)
 *          delta (no findings)
 *  sbom-c  eps   F9 CVE-2024-0009 high 7.0                        (not in the simulated set unless named)
 *
 *  over [sbom-a, sbom-b]:  v1 pass 3 / warn 3 / block 2;  v2 pass 1 / warn 3 / block 4;  v3 pass 5 / warn 1 / block 2
 *  v1→v2: F2 warn->block, F5 pass->warn, F6 pass->block  (3 changes)
 *  v1→v3: F4 warn->pass, F8 warn->pass                    (2 changes)
 */
const catalogueJson = {
  policies: [
    {
      id: 'gate',
      name: 'Gate',
      description: 'test policy',
      versions: [
        {
          version: 1,
          active: true,
          description: 'active',
          rules: {
            block: { severities: ['critical'], kev: true },
            warn: { severities: ['high', 'medium'] },
            honorVex: ['not_affected', 'fixed'],
            ignoreWithoutFix: false,
          },
        },
        {
          version: 2,
          active: false,
          description: 'stricter: CVSS >= 8 blocks, low warns, fixed no longer trusted',
          rules: {
            block: { severities: ['critical'], kev: true, cvssAtLeast: 8.0 },
            warn: { severities: ['high', 'medium', 'low'] },
            honorVex: ['not_affected'],
            ignoreWithoutFix: false,
          },
        },
        {
          version: 3,
          active: false,
          description: 'exploitability: KEV or EPSS >= 0.5 blocks, no-fix findings ignored',
          rules: {
            block: { kev: true, epssAtLeast: 0.5 },
            warn: { severities: ['critical', 'high'] },
            honorVex: ['not_affected', 'fixed'],
            ignoreWithoutFix: true,
          },
        },
      ],
    },
    {
      id: 'other',
      name: 'Other',
      description: 'second policy, to prove lookups are by id',
      versions: [
        {
          version: 7,
          active: true,
          description: 'blocks everything',
          rules: {
            block: { severities: ['critical', 'high', 'medium', 'low'] },
            warn: {},
            honorVex: [],
            ignoreWithoutFix: false,
          },
        },
      ],
    },
  ],
};

const findingsJson = {
  sboms: [
    {
      id: 'sbom-a',
      product: 'a',
      components: [
        {
          name: 'pkg:npm/alpha',
          version: '1.0.0',
          findings: [
            finding({ advisoryId: 'CVE-2024-0001', severity: 'critical', cvss: 9.8, kev: true, epss: 0.9 }),
            finding({ advisoryId: 'CVE-2024-0002', severity: 'high', cvss: 8.1, epss: 0.02 }),
            finding({ advisoryId: 'CVE-2024-0003', severity: 'medium', cvss: 5.0, vex: 'not_affected' }),
          ],
        },
        {
          name: 'pkg:npm/beta',
          version: '2.0.0',
          findings: [
            finding({ advisoryId: 'CVE-2024-0004', severity: 'high', cvss: 7.5, epss: 0.6, fixAvailable: false }),
            finding({ advisoryId: 'CVE-2024-0005', severity: 'low', cvss: 3.1, epss: 0.001 }),
          ],
        },
      ],
    },
    {
      id: 'sbom-b',
      product: 'b',
      components: [
        {
          name: 'pkg:pypi/gamma',
          version: '0.1',
          findings: [
            finding({ advisoryId: 'CVE-2024-0006', severity: 'critical', cvss: 9.1, epss: 0.05, vex: 'fixed' }),
            finding({ advisoryId: 'CVE-2024-0007', severity: 'medium', cvss: 6.5, kev: true, epss: 0.7 }),
            finding({
              advisoryId: 'GHSA-2222-3333-4444',
              severity: 'medium',
              cvss: 4.3,
              vex: 'under_investigation',
              fixAvailable: false,
            }),
          ],
        },
        { name: 'pkg:pypi/delta', version: '1.2', findings: [] },
      ],
    },
    {
      id: 'sbom-c',
      product: 'c',
      components: [
        {
          name: 'pkg:deb/debian/epsilon',
          version: '3',
          findings: [finding({ advisoryId: 'CVE-2024-0009', severity: 'high', cvss: 7.0 })],
        },
      ],
    },
  ],
};

const data: PolicyEngineData = createPolicyEngineData(catalogueJson, findingsJson);

const request = (overrides: Partial<SimulationRequest> = {}): SimulationRequest => ({
  policyId: 'gate',
  policyVersion: 1,
  sbomSet: ['sbom-a', 'sbom-b'],
  ...overrides,
});

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('simulate', () => {
  it('reports no change when the candidate is the active version', () => {
    const { stats, result } = simulate(request({ policyVersion: 1 }), data);
    expect(stats).toEqual({ sboms: 2, components: 4, findings: 8, durationMs: expect.any(Number) as number });
    expect(stats.durationMs).toBeGreaterThanOrEqual(0);
    expect(result).toEqual({
      activePolicyVersion: 1,
      candidatePolicyVersion: 1,
      active: { pass: 3, warn: 3, block: 2 },
      candidate: { pass: 3, warn: 3, block: 2 },
      transitions: {},
      changed: 0,
      changes: [],
    });
  });

  it('diffs the stricter candidate v2 against the active v1', () => {
    const { result } = simulate(request({ policyVersion: 2 }), data);
    expect(result).toEqual({
      activePolicyVersion: 1,
      candidatePolicyVersion: 2,
      active: { pass: 3, warn: 3, block: 2 },
      candidate: { pass: 1, warn: 3, block: 4 },
      transitions: { 'pass->warn': 1, 'pass->block': 1, 'warn->block': 1 },
      changed: 3,
      changes: [
        {
          sbomId: 'sbom-a',
          component: 'pkg:npm/alpha@1.0.0',
          advisoryId: 'CVE-2024-0002',
          severity: 'high',
          from: 'warn',
          to: 'block',
        },
        {
          sbomId: 'sbom-a',
          component: 'pkg:npm/beta@2.0.0',
          advisoryId: 'CVE-2024-0005',
          severity: 'low',
          from: 'pass',
          to: 'warn',
        },
        {
          sbomId: 'sbom-b',
          component: 'pkg:pypi/gamma@0.1',
          advisoryId: 'CVE-2024-0006',
          severity: 'critical',
          from: 'pass',
          to: 'block',
        },
      ],
    });
  });

  it('diffs the exploitability candidate v3 differently', () => {
    const { result } = simulate(request({ policyVersion: 3 }), data);
    expect(result.candidate).toEqual({ pass: 5, warn: 1, block: 2 });
    expect(result.transitions).toEqual({ 'warn->pass': 2 });
    expect(result.changed).toBe(2);
    expect(result.changes.map((c) => [c.sbomId, c.advisoryId, c.from, c.to])).toEqual([
      ['sbom-a', 'CVE-2024-0004', 'warn', 'pass'],
      ['sbom-b', 'GHSA-2222-3333-4444', 'warn', 'pass'],
    ]);
  });

  it('explains the candidate verdict of each change only with captureExplain', () => {
    const explained = simulate(request({ policyVersion: 2, captureExplain: true }), data).result.changes;
    expect(explained.map((c) => c.explain)).toEqual([
      'block: CVSS 8.1 >= 8 (block.cvssAtLeast)',
      'warn: severity low (warn.severities)',
      'block: severity critical (block.severities); CVSS 9.1 >= 8 (block.cvssAtLeast)',
    ]);
    const plain = simulate(request({ policyVersion: 2, captureExplain: false }), data).result.changes;
    expect(plain.some((c) => 'explain' in c)).toBe(false);
  });

  it('orders changes by SBOM, component and advisory whatever the order of sbomSet', () => {
    const reversed = simulate(request({ policyVersion: 2, sbomSet: ['sbom-b', 'sbom-a'] }), data);
    expect(reversed.result).toEqual(simulate(request({ policyVersion: 2 }), data).result);
  });

  it('evaluates a repeated SBOM id once', () => {
    const { stats, result } = simulate(request({ policyVersion: 2, sbomSet: ['sbom-a', 'sbom-a'] }), data);
    expect(stats).toMatchObject({ sboms: 1, components: 2, findings: 5 });
    expect(result.active).toEqual({ pass: 2, warn: 2, block: 1 });
    expect(result.transitions).toEqual({ 'pass->warn': 1, 'warn->block': 1 });
  });

  it('counts every change but lists only the first MAX_CHANGES in order', () => {
    const many = createPolicyEngineData(catalogueJson, {
      sboms: [
        {
          id: 'sbom-many',
          product: 'many',
          components: [
            {
              name: 'pkg:npm/many',
              version: '1.0.0',
              // Written in reverse so that the listed order proves the sort.
              findings: Array.from({ length: 60 }, (_, i) =>
                finding({ advisoryId: `CVE-2024-${1059 - i}`, severity: 'low' }),
              ),
            },
          ],
        },
      ],
    });
    const { result } = simulate(request({ policyVersion: 2, sbomSet: ['sbom-many'] }), many);
    expect(result.changed).toBe(60);
    expect(result.transitions).toEqual({ 'pass->warn': 60 });
    expect(result.changes).toHaveLength(MAX_CHANGES);
    expect(result.changes[0]?.advisoryId).toBe('CVE-2024-1000');
    expect(result.changes[MAX_CHANGES - 1]?.advisoryId).toBe('CVE-2024-1049');
  });

  it('rejects an unknown policy, an unknown version, unknown SBOMs and an empty sbomSet', () => {
    const unknownPolicy = errorOf(() => simulate(request({ policyId: 'nope' }), data));
    expect(unknownPolicy).toBeInstanceOf(PolicyEngineError);
    expect(unknownPolicy).toMatchObject({ code: 'UnknownPolicy', statusCode: 404, message: 'unknown policy "nope"' });

    expect(errorOf(() => simulate(request({ policyVersion: 9 }), data))).toMatchObject({
      code: 'UnknownPolicyVersion',
      statusCode: 404,
      message: 'policy "gate" has no version 9 (versions: 1, 2, 3)',
    });
    // A version of another policy is not a version of this one.
    expect(errorOf(() => simulate(request({ policyVersion: 7 }), data))).toMatchObject({
      code: 'UnknownPolicyVersion',
    });

    expect(errorOf(() => simulate(request({ sbomSet: ['sbom-a', 'sbom-x', 'sbom-y', 'sbom-x'] }), data))).toMatchObject(
      { code: 'UnknownSbom', statusCode: 404, message: 'unknown SBOMs: "sbom-x", "sbom-y"' },
    );
    expect(errorOf(() => simulate(request({ sbomSet: [] }), data))).toMatchObject({
      code: 'EmptySbomSet',
      statusCode: 400,
    });
  });
});

describe('data validation', () => {
  it('rejects a policy without exactly one active version, and repeated versions', () => {
    const policy = catalogueJson.policies[0]!;
    const bad = {
      policies: [
        { ...policy, versions: policy.versions.map((v) => ({ ...v, active: true })) },
        { ...policy, id: 'dup-version', versions: [policy.versions[1]!, policy.versions[1]!] },
      ],
    };
    const error = errorOf(() => parsePolicyCatalogue(bad));
    expect(error).toBeInstanceOf(PolicyEngineDataError);
    expect((error as PolicyEngineDataError).problems).toEqual([
      'policy "gate" must have exactly one active version (has 3)',
      'policy "dup-version" has version 2 twice',
      'policy "dup-version" must have exactly one active version (has 0)',
    ]);
  });

  it('rejects findings with an unknown severity and names where', () => {
    const bad = structuredClone(findingsJson) as { sboms: { components: { findings: { severity: string }[] }[] }[] };
    bad.sboms[0]!.components[1]!.findings[0]!.severity = 'severe';
    const error = errorOf(() => parseFindingsData(bad)) as PolicyEngineDataError;
    expect(error).toBeInstanceOf(PolicyEngineDataError);
    expect(error.problems.some((p) => p.startsWith('/sboms/0/components/1/findings/0/severity'))).toBe(true);
  });

  it('rejects an advisory listed twice on one component', () => {
    const bad = structuredClone(findingsJson);
    const alpha = bad.sboms[0]!.components[0]!;
    alpha.findings.push({ ...alpha.findings[0]! });
    expect((errorOf(() => parseFindingsData(bad)) as PolicyEngineDataError).problems).toEqual([
      'SBOM "sbom-a" component pkg:npm/alpha@1.0.0 lists CVE-2024-0001 twice',
    ]);
  });
});

describe('bundled sample data', () => {
  const sample = loadPolicyEngineData();
  const allSboms = [...sample.sboms.keys()];

  it('loads six SBOMs and a catalogue with one active version per policy', () => {
    expect(allSboms).toEqual([
      'sbom-payments-api',
      'sbom-web-frontend',
      'sbom-auth-service',
      'sbom-data-pipeline',
      'sbom-notification-worker',
      'sbom-edge-gateway',
    ]);
    const total = listSboms(sample).reduce((sum, s) => sum + s.findings, 0);
    expect(total).toBeGreaterThanOrEqual(60);
    expect(total).toBeLessThanOrEqual(120);
    expect(listPolicies(sample).map((p) => [p.id, p.activeVersion])).toEqual([
      ['baseline-security', 2],
      ['kev-exploitability', 1],
      ['strict-release-gate', 1],
      ['advisory-only', 1],
    ]);
  });

  it('gives a consistent diff for every policy version: counts add up and transitions explain the change', () => {
    for (const policy of listPolicies(sample)) {
      for (const { version } of policy.versions) {
        const { stats, result } = simulate({ policyId: policy.id, policyVersion: version, sbomSet: allSboms }, sample);
        const sum = (c: { pass: number; warn: number; block: number }) => c.pass + c.warn + c.block;
        expect(sum(result.active)).toBe(stats.findings);
        expect(sum(result.candidate)).toBe(stats.findings);
        expect(Object.values(result.transitions).reduce((a, b) => a + b, 0)).toBe(result.changed);
        for (const verdict of ['pass', 'warn', 'block'] as const) {
          const into = Object.entries(result.transitions).filter(([k]) => k.endsWith(`->${verdict}`));
          const out = Object.entries(result.transitions).filter(([k]) => k.startsWith(`${verdict}->`));
          const net = into.reduce((a, [, n]) => a + n, 0) - out.reduce((a, [, n]) => a + n, 0);
          expect(result.candidate[verdict] - result.active[verdict]).toBe(net);
        }
        if (version === policy.activeVersion) expect(result.changed).toBe(0);
      }
    }
  });

  it('makes the draft versions of baseline-security disagree with each other', () => {
    const run = (policyVersion: number) =>
      simulate({ policyId: 'baseline-security', policyVersion, sbomSet: allSboms }, sample).result;
    const stricter = run(3);
    const exploitability = run(4);
    // v3 only adds block criteria, so it can only move findings towards block.
    expect(Object.keys(stricter.transitions).every((k) => k.endsWith('->block'))).toBe(true);
    expect(stricter.changed).toBeGreaterThan(0);
    expect(exploitability.transitions).not.toEqual(stricter.transitions);
  });
});
