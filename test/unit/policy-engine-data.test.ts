/**
 * What the reference Policy Engine refuses to start with (invalid catalogue or findings files, each problem named)
 * and the details of a simulation a caller reads (error messages, order of changes, explanations, duration).
 * Every document is built inside its test so that a broken validator fails tests instead of the file's import.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import {
  activeVersionOf,
  componentKey,
  createPolicyEngineData,
  evaluateFinding,
  listPolicies,
  listSboms,
  loadPolicyEngineData,
  parseFindingsData,
  parsePolicyCatalogue,
  PolicyEngineDataError,
  PolicyEngineError,
  SAMPLE_DATA_DIR,
  simulate,
} from '../../policy-engine/evaluate.js';
import type { Finding, PolicyRules } from '../../policy-engine/model.js';

/** A complete, valid finding. */
const finding = (overrides: Record<string, unknown> = {}): Finding =>
  ({
    advisoryId: 'CVE-2024-0001',
    severity: 'high',
    cvss: 7.5,
    kev: false,
    epss: 0.1,
    vex: 'affected',
    fixAvailable: true,
    ...overrides,
  }) as Finding;

/** Valid findings data: one SBOM with one component and one finding, each level overridable. */
function findingsData(
  parts: {
    finding?: Record<string, unknown>;
    component?: Record<string, unknown>;
    sbom?: Record<string, unknown>;
    root?: Record<string, unknown>;
  } = {},
): Record<string, unknown> {
  return {
    sboms: [
      {
        id: 'sbom-a',
        product: 'a 1.0',
        components: [
          { name: 'pkg:npm/alpha', version: '1.0.0', findings: [finding(parts.finding)], ...parts.component },
        ],
        ...parts.sbom,
      },
    ],
    ...parts.root,
  };
}

const rules = (overrides: Record<string, unknown> = {}): PolicyRules =>
  ({
    block: { severities: ['critical'], kev: true, cvssAtLeast: 9, epssAtLeast: 0.9 },
    warn: { severities: ['high'] },
    honorVex: ['not_affected'],
    ignoreWithoutFix: false,
    ...overrides,
  }) as PolicyRules;

/** A valid catalogue: policy `gate` with active version 1 and draft version 2, each level overridable. */
function catalogue(
  parts: {
    rules?: Record<string, unknown>;
    version?: Record<string, unknown>;
    policy?: Record<string, unknown>;
    root?: Record<string, unknown>;
  } = {},
): Record<string, unknown> {
  return {
    policies: [
      {
        id: 'gate',
        name: 'Gate',
        description: '',
        versions: [
          { version: 1, active: true, description: 'active', rules: rules(parts.rules), ...parts.version },
          { version: 2, active: false, description: 'draft', rules: rules() },
        ],
        ...parts.policy,
      },
    ],
    ...parts.root,
  };
}

function dataErrorOf(fn: () => unknown): PolicyEngineDataError {
  try {
    fn();
  } catch (error) {
    if (error instanceof PolicyEngineDataError) return error;
    throw error;
  }
  throw new Error('expected a PolicyEngineDataError');
}

/** The paths (before the colon) of the problems reported for invalid findings data. */
const findingsProblemPaths = (json: unknown) =>
  dataErrorOf(() => parseFindingsData(json)).problems.map((p) => p.split(': ')[0]);
const catalogueProblemPaths = (json: unknown) =>
  dataErrorOf(() => parsePolicyCatalogue(json)).problems.map((p) => p.split(': ')[0]);

const F = '/sboms/0/components/0/findings/0';
const C = '/sboms/0/components/0';
const V = '/policies/0/versions/0';

describe('findings data validation', () => {
  it('accepts complete data, with or without a note, and findings without an EPSS score', () => {
    const json = findingsData({ root: { note: 'sample' } });
    expect(parseFindingsData(json)).toBe(json);
    const { epss: _epss, ...withoutEpss } = finding();
    expect(() => parseFindingsData(findingsData({ finding: withoutEpss }))).not.toThrow();
    expect(() => parseFindingsData(findingsData({ finding: { advisoryId: 'GHSA-2222-3333-4444' } }))).not.toThrow();
    expect(() => parseFindingsData(findingsData({ finding: { advisoryId: 'CVE-2024-123456' } }))).not.toThrow();
    expect(() => parseFindingsData(findingsData({ finding: { cvss: 0, epss: 0 } }))).not.toThrow();
    expect(() => parseFindingsData(findingsData({ finding: { cvss: 10, epss: 1 } }))).not.toThrow();
  });

  it.each([
    ['a CVE id with a three-digit number', { advisoryId: 'CVE-2024-001' }, `${F}/advisoryId`],
    ['a GHSA id with letters outside its alphabet', { advisoryId: 'GHSA-aaaa-bbbb-cccc' }, `${F}/advisoryId`],
    ['an advisory id with a prefix', { advisoryId: 'xCVE-2024-0001' }, `${F}/advisoryId`],
    ['an advisory id with a suffix', { advisoryId: 'CVE-2024-0001x' }, `${F}/advisoryId`],
    ['an unknown severity', { severity: 'severe' }, `${F}/severity`],
    ['an unknown VEX status', { vex: 'maybe' }, `${F}/vex`],
    ['a CVSS below 0', { cvss: -0.1 }, `${F}/cvss`],
    ['a CVSS above 10', { cvss: 10.1 }, `${F}/cvss`],
    ['an EPSS below 0', { epss: -0.01 }, `${F}/epss`],
    ['an EPSS above 1', { epss: 1.01 }, `${F}/epss`],
    ['a KEV flag that is not a boolean', { kev: 'yes' }, `${F}/kev`],
    ['an unknown property', { score: 1 }, `${F}/score`],
  ])('rejects a finding with %s', (_what, override, path) => {
    expect(findingsProblemPaths(findingsData({ finding: override }))).toContain(path);
  });

  it.each([
    ['a component name that is not a purl', { component: { name: 'npm/alpha' } }, `${C}/name`],
    ['an empty component version', { component: { version: '' } }, `${C}/version`],
    ['an unknown component property', { component: { license: 'MIT' } }, `${C}/license`],
    ['an SBOM id without the sbom- prefix', { sbom: { id: 'a' } }, '/sboms/0/id'],
    ['an SBOM id with capitals', { sbom: { id: 'sbom-A' } }, '/sboms/0/id'],
    ['an SBOM id with a prefix', { sbom: { id: 'x-sbom-a' } }, '/sboms/0/id'],
    ['an empty product', { sbom: { product: '' } }, '/sboms/0/product'],
    ['an unknown SBOM property', { sbom: { owner: 'x' } }, '/sboms/0/owner'],
    ['an unknown top-level property', { root: { version: 1 } }, '/version'],
  ])('rejects %s', (_what, parts, path) => {
    expect(findingsProblemPaths(findingsData(parts))).toContain(path);
  });

  it('names the root when the file is not an object, under the default source name', () => {
    const error = dataErrorOf(() => parseFindingsData(null));
    expect(error.problems[0]).toMatch(/^\/: /);
    expect(error.source).toBe('findings');
    expect(error.message).toBe(`Invalid policy engine data (findings):\n  - ${error.problems.join('\n  - ')}`);
  });

  it('reports at most 20 structural problems of a wholly wrong file', () => {
    const sboms = Array.from({ length: 30 }, (_, i) => ({ id: `sbom-${i}`, product: '', components: [] }));
    const problems = dataErrorOf(() => parseFindingsData({ sboms })).problems;
    expect(problems).toHaveLength(20);
    expect(problems[0]).toMatch(/^\/sboms\/0\/product: /);
    const few = Array.from({ length: 19 }, (_, i) => ({ id: `sbom-${i}`, product: '', components: [] }));
    expect(dataErrorOf(() => parseFindingsData({ sboms: few })).problems).toHaveLength(19);
  });

  it('lists every problem on its own line of the message', () => {
    const error = dataErrorOf(() => parseFindingsData(findingsData({ sbom: { id: 'a', product: '' } }), 'f.json'));
    const [id, product] = error.problems;
    expect(error.problems).toHaveLength(2);
    expect(id).toMatch(/^\/sboms\/0\/id: /);
    expect(product).toMatch(/^\/sboms\/0\/product: /);
    expect(error.message).toBe(`Invalid policy engine data (f.json):\n  - ${id}\n  - ${product}`);
  });

  it('rejects repeated SBOM ids and components, naming each', () => {
    const json = findingsData();
    const sboms = json.sboms as { components: unknown[] }[];
    const sbom = sboms[0]!;
    sbom.components.push(structuredClone(sbom.components[0]));
    sboms.push(structuredClone(sbom));
    expect(dataErrorOf(() => parseFindingsData(json, 'findings.json'))).toMatchObject({
      name: 'PolicyEngineDataError',
      source: 'findings.json',
      problems: [
        'SBOM "sbom-a" lists component pkg:npm/alpha@1.0.0 twice',
        'SBOM "sbom-a" is defined twice',
        'SBOM "sbom-a" lists component pkg:npm/alpha@1.0.0 twice',
      ],
    });
    // The same component name in another version, and the same advisory on two components, are fine.
    const versions = findingsData();
    const components = (versions.sboms as { components: Record<string, unknown>[] }[])[0]!.components;
    components.push({ ...structuredClone(components[0]!), version: '2.0.0' });
    expect(() => parseFindingsData(versions)).not.toThrow();
  });
});

describe('policy catalogue validation', () => {
  it('accepts a complete catalogue with or without a note', () => {
    const json = catalogue({ root: { note: 'sample' } });
    expect(parsePolicyCatalogue(json)).toBe(json);
    expect(() => parsePolicyCatalogue(catalogue({ rules: { block: {}, warn: {}, honorVex: [] } }))).not.toThrow();
  });

  it.each([
    ['a policy id with capitals', { policy: { id: 'Gate' } }, '/policies/0/id'],
    ['a policy id starting with a dash', { policy: { id: '-gate' } }, '/policies/0/id'],
    ['a policy id with a space at the end', { policy: { id: 'gate ' } }, '/policies/0/id'],
    ['an empty policy name', { policy: { name: '' } }, '/policies/0/name'],
    ['a policy without versions', { policy: { versions: [] } }, '/policies/0/versions'],
    ['an unknown policy property', { policy: { owner: 'x' } }, '/policies/0/owner'],
    ['version 0', { version: { version: 0 } }, `${V}/version`],
    ['a fractional version', { version: { version: 1.5 } }, `${V}/version`],
    ['an unknown version property', { version: { author: 'x' } }, `${V}/author`],
    ['an unknown rules property', { rules: { allowList: [] } }, `${V}/rules/allowList`],
    ['a VEX status honoured twice', { rules: { honorVex: ['fixed', 'fixed'] } }, `${V}/rules/honorVex`],
    ['an unknown honoured VEX status', { rules: { honorVex: ['maybe'] } }, `${V}/rules/honorVex/0`],
    ['a severity listed twice', { rules: { block: { severities: ['low', 'low'] } } }, `${V}/rules/block/severities`],
    ['an unknown severity', { rules: { warn: { severities: ['severe'] } } }, `${V}/rules/warn/severities/0`],
    ['cvssAtLeast above 10', { rules: { block: { cvssAtLeast: 11 } } }, `${V}/rules/block/cvssAtLeast`],
    ['cvssAtLeast below 0', { rules: { block: { cvssAtLeast: -1 } } }, `${V}/rules/block/cvssAtLeast`],
    ['epssAtLeast above 1', { rules: { warn: { epssAtLeast: 1.5 } } }, `${V}/rules/warn/epssAtLeast`],
    ['epssAtLeast below 0', { rules: { warn: { epssAtLeast: -0.5 } } }, `${V}/rules/warn/epssAtLeast`],
    ['an unknown criterion', { rules: { block: { cwe: ['CWE-79'] } } }, `${V}/rules/block/cwe`],
    ['an unknown top-level property', { root: { version: 1 } }, '/version'],
  ])('rejects %s', (_what, parts, path) => {
    expect(catalogueProblemPaths(catalogue(parts))).toContain(path);
  });

  it('rejects a policy defined twice under the default source name', () => {
    const json = catalogue();
    const policies = json.policies as unknown[];
    policies.push(structuredClone(policies[0]));
    expect(dataErrorOf(() => parsePolicyCatalogue(json))).toMatchObject({
      source: 'policies',
      problems: ['policy "gate" is defined twice'],
    });
  });

  it('counts only the active versions', () => {
    const none = catalogue({ version: { active: false } });
    expect(dataErrorOf(() => parsePolicyCatalogue(none)).problems).toEqual([
      'policy "gate" must have exactly one active version (has 0)',
    ]);
  });
});

describe('loading data files', () => {
  it('loads the bundled samples by default', () => {
    expect(SAMPLE_DATA_DIR).toMatch(/samples\/policy-engine\/$/);
    const data = loadPolicyEngineData();
    expect(listSboms(data)).toHaveLength(6);
    expect(listPolicies(data).map((p) => p.id)).toContain('baseline-security');
  });

  it('loads and indexes both files of a directory, and names the file of each problem', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'policy-engine-data-'));
    try {
      await writeFile(join(dir, 'policies.json'), JSON.stringify(catalogue()));
      await writeFile(join(dir, 'findings.json'), JSON.stringify(findingsData()));
      const data = loadPolicyEngineData(dir);
      expect(data.policies.get('gate')?.name).toBe('Gate');
      expect(data.sboms.get('sbom-a')?.product).toBe('a 1.0');
      expect(listSboms(data)).toEqual([{ id: 'sbom-a', product: 'a 1.0', components: 1, findings: 1 }]);

      await writeFile(join(dir, 'findings.json'), JSON.stringify(findingsData({ sbom: { product: '' } })));
      expect(dataErrorOf(() => loadPolicyEngineData(dir))).toMatchObject({ source: join(dir, 'findings.json') });
      await writeFile(join(dir, 'policies.json'), JSON.stringify(catalogue({ policy: { name: '' } })));
      expect(dataErrorOf(() => loadPolicyEngineData(dir))).toMatchObject({ source: join(dir, 'policies.json') });

      await writeFile(join(dir, 'policies.json'), '{ not json');
      const unparsable = dataErrorOf(() => loadPolicyEngineData(dir));
      expect(unparsable.source).toBe(join(dir, 'policies.json'));
      expect(unparsable.problems).toHaveLength(1);
      expect(unparsable.problems[0]).toMatch(/JSON/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names a missing file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'policy-engine-data-'));
    try {
      await writeFile(join(dir, 'policies.json'), JSON.stringify(catalogue()));
      const missing = dataErrorOf(() => loadPolicyEngineData(dir));
      expect(missing.source).toBe(join(dir, 'findings.json'));
      expect(missing.problems[0]).toMatch(/ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('simulation details a caller reads', () => {
  /** Two SBOMs whose component names sort in the opposite order of the SBOM ids. */
  const crossedFindings = () => ({
    sboms: [
      {
        id: 'sbom-b',
        product: 'b',
        components: [{ name: 'pkg:npm/alpha', version: '1', findings: [finding({ advisoryId: 'CVE-2024-0002' })] }],
      },
      {
        id: 'sbom-a',
        product: 'a',
        components: [
          {
            name: 'pkg:npm/zeta',
            version: '1',
            findings: [finding({ advisoryId: 'CVE-2024-0009' }), finding({ advisoryId: 'CVE-2024-0001' })],
          },
        ],
      },
    ],
  });
  const crossed = () => createPolicyEngineData(catalogue(), crossedFindings());
  const stricter = rules({ block: { severities: ['high'] } });
  const catalogueWithStricterDraft = () => {
    const json = catalogue();
    const versions = (json.policies as { versions: { rules: PolicyRules }[] }[])[0]!.versions;
    versions[1]!.rules = stricter;
    return json;
  };

  it('orders changes by SBOM first, then component, then advisory', () => {
    const data = createPolicyEngineData(catalogueWithStricterDraft(), crossedFindings());
    const { result } = simulate({ policyId: 'gate', policyVersion: 2, sbomSet: ['sbom-b', 'sbom-a'] }, data);
    expect(result.changes.map((c) => `${c.sbomId} ${c.component} ${c.advisoryId}`)).toEqual([
      'sbom-a pkg:npm/zeta@1 CVE-2024-0001',
      'sbom-a pkg:npm/zeta@1 CVE-2024-0009',
      'sbom-b pkg:npm/alpha@1 CVE-2024-0002',
    ]);
  });

  it('orders many changes in shuffled input by advisory', () => {
    // A fixed permutation of 0..199 so that the sort works on runs of both directions.
    const order = Array.from({ length: 200 }, (_, i) => (i * 73) % 200);
    const data = createPolicyEngineData(catalogueWithStricterDraft(), {
      sboms: [
        {
          id: 'sbom-many',
          product: 'many',
          components: [
            {
              name: 'pkg:npm/many',
              version: '1',
              findings: order.map((n) => finding({ advisoryId: `CVE-2024-${1000 + n}` })),
            },
          ],
        },
      ],
    });
    const { result } = simulate({ policyId: 'gate', policyVersion: 2, sbomSet: ['sbom-many'] }, data);
    expect(result.changed).toBe(200);
    expect(result.changes.map((c) => c.advisoryId)).toEqual(
      Array.from({ length: 50 }, (_, i) => `CVE-2024-${1000 + i}`),
    );
  });

  it('reports its duration in milliseconds, rounded to microseconds, within the time the call took', () => {
    const data = crossed();
    const before = performance.now();
    const { stats } = simulate({ policyId: 'gate', policyVersion: 2, sbomSet: ['sbom-a', 'sbom-b'] }, data);
    const elapsed = performance.now() - before;
    expect(stats.durationMs).toBeGreaterThanOrEqual(0);
    expect(stats.durationMs).toBeLessThanOrEqual(elapsed + 0.001);
    expect(Math.round(stats.durationMs * 1000) / 1000).toBe(stats.durationMs);
  });

  it('reports a duration of 3.1415926 ms as 3.142', () => {
    const data = crossed();
    const clock = vi.spyOn(performance, 'now').mockReturnValueOnce(1000).mockReturnValueOnce(1003.1415926);
    try {
      const { stats } = simulate({ policyId: 'gate', policyVersion: 1, sbomSet: ['sbom-a'] }, data);
      expect(stats.durationMs).toBe(3.142);
    } finally {
      clock.mockRestore();
    }
  });

  it('names the problem of an empty SBOM set and of one unknown SBOM', () => {
    const data = crossed();
    expect(() => simulate({ policyId: 'gate', policyVersion: 1, sbomSet: [] }, data)).toThrow(
      new PolicyEngineError('EmptySbomSet', 'sbomSet must name at least one SBOM'),
    );
    const unknown = (() => {
      try {
        simulate({ policyId: 'gate', policyVersion: 1, sbomSet: ['sbom-a', 'sbom-x'] }, data);
      } catch (error) {
        return error;
      }
    })();
    expect(unknown).toBeInstanceOf(PolicyEngineError);
    expect(unknown).toMatchObject({
      name: 'PolicyEngineError',
      code: 'UnknownSbom',
      message: 'unknown SBOM: "sbom-x"',
    });
  });

  it('explains a pass for a finding without a fix and every warn criterion that matched', () => {
    expect(
      evaluateFinding(rules({ ignoreWithoutFix: true }), finding({ severity: 'critical', fixAvailable: false })),
    ).toEqual({
      verdict: 'pass',
      rule: 'withoutFix',
      explain: 'pass: no fix is available and the policy ignores such findings (ignoreWithoutFix)',
    });
    const warn = rules({ block: {}, warn: { severities: ['high'], cvssAtLeast: 7, kev: true } });
    expect(evaluateFinding(warn, finding({ kev: true })).explain).toBe(
      'warn: listed in CISA KEV (warn.kev); severity high (warn.severities); CVSS 7.5 >= 7 (warn.cvssAtLeast)',
    );
  });

  it('knows the active version of a policy and the key of a component', () => {
    const [policy] = parsePolicyCatalogue(catalogue()).policies;
    expect(activeVersionOf(policy!).version).toBe(1);
    expect(() => activeVersionOf({ ...policy!, versions: [] })).toThrow('policy "gate" has no active version');
    expect(componentKey({ name: 'pkg:npm/alpha', version: '1.0.0' })).toBe('pkg:npm/alpha@1.0.0');
  });
});
