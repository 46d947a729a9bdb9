/**
 * The evaluation core of the reference Policy Engine: validation of the catalogue and findings data, the verdict
 * of one finding under one policy version, and the simulation that diffs a candidate policy version against the
 * active one. Everything here is pure except `loadPolicyEngineData`, which reads the bundled JSON files.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import {
  VERDICTS,
  type SimulationInputs,
  type SimulationResultSummary,
  type SimulationStats,
  type Verdict,
  type VerdictChange,
  type VerdictCounts,
} from '../workflows/policy-simulation/definitions.js';
import {
  FindingsData,
  PolicyCatalogue,
  type Finding,
  type Policy,
  type PolicyRules,
  type PolicyVersion,
  type RuleCriteria,
  type Sbom,
} from './model.js';

/** Directory of the bundled sample data (`samples/policy-engine/`). */
export const SAMPLE_DATA_DIR = fileURLToPath(new URL('../samples/policy-engine/', import.meta.url));

/** How many changes a result lists at most; the counts always cover every change. */
export const MAX_CHANGES = 50;

/** Codes of the request errors; the server answers 404 for unknown ids and 400 for an empty SBOM set. */
export type PolicyEngineErrorCode = 'UnknownPolicy' | 'UnknownPolicyVersion' | 'UnknownSbom' | 'EmptySbomSet';

/** A simulation request the engine cannot evaluate; `code` is stable and `statusCode` is the HTTP answer. */
export class PolicyEngineError extends Error {
  override name = 'PolicyEngineError';
  constructor(
    readonly code: PolicyEngineErrorCode,
    message: string,
  ) {
    super(message);
  }

  /** 404 for ids that name nothing, 400 for a malformed request. */
  get statusCode(): 400 | 404 {
    return this.code === 'EmptySbomSet' ? 400 : 404;
  }
}

/** The catalogue or findings data is invalid; `problems` lists every problem found. */
export class PolicyEngineDataError extends Error {
  override name = 'PolicyEngineDataError';
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`Invalid policy engine data (${source}):\n  - ${problems.join('\n  - ')}`);
  }
}

/** Validated, indexed data an engine evaluates against. */
export interface PolicyEngineData {
  catalogue: PolicyCatalogue;
  findings: FindingsData;
  /** Policies by id, in catalogue order. */
  policies: ReadonlyMap<string, Policy>;
  /** SBOMs by id, in file order. */
  sboms: ReadonlyMap<string, Sbom>;
}

// Caps the structural error list: a wholly wrong file would otherwise produce thousands of lines.
const MAX_SCHEMA_PROBLEMS = 20;

function schemaProblems(schema: TSchema, value: unknown): string[] {
  const problems: string[] = [];
  for (const error of Value.Errors(schema, value)) {
    problems.push(`${error.path || '/'}: ${error.message}`);
    if (problems.length >= MAX_SCHEMA_PROBLEMS) break;
  }
  return problems;
}

/**
 * Validates a policy catalogue: the schema, then what a schema cannot say (unique policy ids, unique versions,
 * exactly one active version per policy).
 * @throws PolicyEngineDataError listing every problem.
 */
export function parsePolicyCatalogue(json: unknown, source = 'policies'): PolicyCatalogue {
  const structural = schemaProblems(PolicyCatalogue, json);
  if (structural.length > 0) throw new PolicyEngineDataError(source, structural);
  const catalogue = json as PolicyCatalogue;
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const policy of catalogue.policies) {
    if (ids.has(policy.id)) problems.push(`policy "${policy.id}" is defined twice`);
    ids.add(policy.id);
    const versions = new Set<number>();
    for (const version of policy.versions) {
      if (versions.has(version.version)) problems.push(`policy "${policy.id}" has version ${version.version} twice`);
      versions.add(version.version);
    }
    const active = policy.versions.filter((v) => v.active).length;
    if (active !== 1) problems.push(`policy "${policy.id}" must have exactly one active version (has ${active})`);
  }
  if (problems.length > 0) throw new PolicyEngineDataError(source, problems);
  return catalogue;
}

/**
 * Validates findings data: the schema, then uniqueness (SBOM ids; component name@version within an SBOM; advisory
 * within a component) so that the sort key of a change identifies exactly one finding.
 * @throws PolicyEngineDataError listing every problem.
 */
export function parseFindingsData(json: unknown, source = 'findings'): FindingsData {
  const structural = schemaProblems(FindingsData, json);
  if (structural.length > 0) throw new PolicyEngineDataError(source, structural);
  const data = json as FindingsData;
  const problems: string[] = [];
  const sbomIds = new Set<string>();
  for (const sbom of data.sboms) {
    if (sbomIds.has(sbom.id)) problems.push(`SBOM "${sbom.id}" is defined twice`);
    sbomIds.add(sbom.id);
    const components = new Set<string>();
    for (const component of sbom.components) {
      const key = componentKey(component);
      if (components.has(key)) problems.push(`SBOM "${sbom.id}" lists component ${key} twice`);
      components.add(key);
      const advisories = new Set<string>();
      for (const finding of component.findings) {
        if (advisories.has(finding.advisoryId))
          problems.push(`SBOM "${sbom.id}" component ${key} lists ${finding.advisoryId} twice`);
        advisories.add(finding.advisoryId);
      }
    }
  }
  if (problems.length > 0) throw new PolicyEngineDataError(source, problems);
  return data;
}

/** Validates and indexes a catalogue and findings data (pure: the caller supplies parsed JSON). */
export function createPolicyEngineData(catalogueJson: unknown, findingsJson: unknown): PolicyEngineData {
  return indexData(parsePolicyCatalogue(catalogueJson), parseFindingsData(findingsJson));
}

function indexData(catalogue: PolicyCatalogue, findings: FindingsData): PolicyEngineData {
  return {
    catalogue,
    findings,
    policies: new Map(catalogue.policies.map((p) => [p.id, p])),
    sboms: new Map(findings.sboms.map((s) => [s.id, s])),
  };
}

/**
 * Reads and validates `policies.json` and `findings.json` from `dir` (default: the bundled samples).
 * Synchronous because it runs once at start-up, before the server takes requests.
 * @throws PolicyEngineDataError when a file is not valid JSON or not valid data.
 */
export function loadPolicyEngineData(dir: string = SAMPLE_DATA_DIR): PolicyEngineData {
  const read = (file: string): unknown => {
    const path = join(dir, file);
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as unknown;
    } catch (error) {
      throw new PolicyEngineDataError(path, [error instanceof Error ? error.message : String(error)]);
    }
  };
  const catalogue = parsePolicyCatalogue(read('policies.json'), join(dir, 'policies.json'));
  const findings = parseFindingsData(read('findings.json'), join(dir, 'findings.json'));
  return indexData(catalogue, findings);
}

/** The identity of a component in changes: `name@version` (a purl with its version). */
export function componentKey(component: { name: string; version: string }): string {
  return `${component.name}@${component.version}`;
}

/** Which step of the rule precedence decided a verdict. */
export type DecidingRule = 'vex' | 'withoutFix' | 'block' | 'warn' | 'default';

/** The verdict of one finding and why. */
export interface FindingVerdict {
  verdict: Verdict;
  rule: DecidingRule;
  /** Human-readable reason naming the rule (and, for block/warn, every criterion that matched). */
  explain: string;
}

// Lists every matching criterion, not just the first, so an explanation shows all reasons a rule fired.
function matchedCriteria(criteria: RuleCriteria, finding: Finding, ruleName: 'block' | 'warn'): string[] {
  const reasons: string[] = [];
  if (criteria.kev === true && finding.kev) reasons.push(`listed in CISA KEV (${ruleName}.kev)`);
  if (criteria.severities?.includes(finding.severity))
    reasons.push(`severity ${finding.severity} (${ruleName}.severities)`);
  if (criteria.cvssAtLeast !== undefined && finding.cvss >= criteria.cvssAtLeast)
    reasons.push(`CVSS ${finding.cvss} >= ${criteria.cvssAtLeast} (${ruleName}.cvssAtLeast)`);
  if (criteria.epssAtLeast !== undefined && finding.epss !== undefined && finding.epss >= criteria.epssAtLeast)
    reasons.push(`EPSS ${finding.epss} >= ${criteria.epssAtLeast} (${ruleName}.epssAtLeast)`);
  return reasons;
}

/**
 * The verdict of one finding under one policy version. Precedence: honoured VEX status → pass; no fix with
 * `ignoreWithoutFix` → pass; any `block` criterion → block; any `warn` criterion → warn; otherwise pass.
 */
export function evaluateFinding(rules: PolicyRules, finding: Finding): FindingVerdict {
  if (rules.honorVex.includes(finding.vex))
    return { verdict: 'pass', rule: 'vex', explain: `pass: VEX status ${finding.vex} is honoured (honorVex)` };
  if (rules.ignoreWithoutFix && !finding.fixAvailable)
    return {
      verdict: 'pass',
      rule: 'withoutFix',
      explain: 'pass: no fix is available and the policy ignores such findings (ignoreWithoutFix)',
    };
  const block = matchedCriteria(rules.block, finding, 'block');
  if (block.length > 0) return { verdict: 'block', rule: 'block', explain: `block: ${block.join('; ')}` };
  const warn = matchedCriteria(rules.warn, finding, 'warn');
  if (warn.length > 0) return { verdict: 'warn', rule: 'warn', explain: `warn: ${warn.join('; ')}` };
  return { verdict: 'pass', rule: 'default', explain: 'pass: no block or warn criterion matched' };
}

/** What to simulate: a candidate version of a policy over a set of SBOMs. */
export interface SimulationRequest extends Pick<SimulationInputs, 'sbomSet' | 'captureExplain'> {
  policyId: string;
  policyVersion: number;
}

/** Counters and verdict diff of a simulation. */
export interface SimulationOutcome {
  stats: SimulationStats;
  result: SimulationResultSummary;
}

/** The active version of a policy (the catalogue guarantees exactly one). */
export function activeVersionOf(policy: Policy): PolicyVersion {
  const active = policy.versions.find((v) => v.active);
  if (!active) throw new Error(`policy "${policy.id}" has no active version`); // prevented by parsePolicyCatalogue
  return active;
}

// Code-unit order, not localeCompare: the order of changes must not depend on the host's locale.
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareChanges(a: VerdictChange, b: VerdictChange): number {
  return (
    compareStrings(a.sbomId, b.sbomId) ||
    compareStrings(a.component, b.component) ||
    compareStrings(a.advisoryId, b.advisoryId)
  );
}

const emptyCounts = (): VerdictCounts => ({ pass: 0, warn: 0, block: 0 });

/**
 * Evaluates the active version and the candidate version of `policyId` over every finding of the requested SBOMs
 * and reports both verdict counts, the changed transitions (`from->to`, changed ones only), the number of changes
 * and the first `MAX_CHANGES` changes in (sbomId, component, advisoryId) order. Duplicate SBOM ids in `sbomSet`
 * are evaluated once.
 * @throws PolicyEngineError `EmptySbomSet`, `UnknownPolicy`, `UnknownPolicyVersion` or `UnknownSbom` (naming
 * every unknown id).
 */
export function simulate(request: SimulationRequest, data: PolicyEngineData): SimulationOutcome {
  const started = performance.now();
  if (request.sbomSet.length === 0) throw new PolicyEngineError('EmptySbomSet', 'sbomSet must name at least one SBOM');
  const policy = data.policies.get(request.policyId);
  if (!policy) throw new PolicyEngineError('UnknownPolicy', `unknown policy "${request.policyId}"`);
  const candidate = policy.versions.find((v) => v.version === request.policyVersion);
  if (!candidate)
    throw new PolicyEngineError(
      'UnknownPolicyVersion',
      `policy "${policy.id}" has no version ${request.policyVersion} (versions: ${policy.versions.map((v) => v.version).join(', ')})`,
    );
  const active = activeVersionOf(policy);

  const sbomIds = [...new Set(request.sbomSet)];
  const unknown = sbomIds.filter((id) => !data.sboms.has(id));
  if (unknown.length > 0)
    throw new PolicyEngineError(
      'UnknownSbom',
      `unknown SBOM${unknown.length > 1 ? 's' : ''}: ${unknown.map((id) => `"${id}"`).join(', ')}`,
    );

  const activeCounts = emptyCounts();
  const candidateCounts = emptyCounts();
  const transitionCounts = new Map<string, number>();
  const changes: VerdictChange[] = [];
  let components = 0;
  let findings = 0;
  for (const sbomId of sbomIds) {
    const sbom = data.sboms.get(sbomId) as Sbom; // every id was checked above
    components += sbom.components.length;
    for (const component of sbom.components) {
      for (const finding of component.findings) {
        findings++;
        const from = evaluateFinding(active.rules, finding);
        const to = evaluateFinding(candidate.rules, finding);
        activeCounts[from.verdict]++;
        candidateCounts[to.verdict]++;
        if (from.verdict === to.verdict) continue;
        const transition = `${from.verdict}->${to.verdict}`;
        transitionCounts.set(transition, (transitionCounts.get(transition) ?? 0) + 1);
        changes.push({
          sbomId,
          component: componentKey(component),
          advisoryId: finding.advisoryId,
          severity: finding.severity,
          from: from.verdict,
          to: to.verdict,
          ...(request.captureExplain ? { explain: to.explain } : {}),
        });
      }
    }
  }

  // Fixed key order (pass, warn, block × same) so equal inputs serialise to identical documents.
  const transitions: Record<string, number> = {};
  for (const from of VERDICTS)
    for (const to of VERDICTS) {
      const count = transitionCounts.get(`${from}->${to}`);
      if (count !== undefined) transitions[`${from}->${to}`] = count;
    }

  changes.sort(compareChanges);
  const result: SimulationResultSummary = {
    activePolicyVersion: active.version,
    candidatePolicyVersion: candidate.version,
    active: activeCounts,
    candidate: candidateCounts,
    transitions,
    changed: changes.length,
    changes: changes.slice(0, MAX_CHANGES),
  };
  const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
  return { stats: { sboms: sbomIds.length, components, findings, durationMs }, result };
}

/** One policy as the catalogue listing shows it. */
export interface PolicySummary {
  id: string;
  name: string;
  description: string;
  activeVersion: number;
  versions: PolicyVersion[];
}

/** The catalogue listing: every policy with its versions and the active one. */
export function listPolicies(data: PolicyEngineData): PolicySummary[] {
  return [...data.policies.values()].map((policy) => ({
    id: policy.id,
    name: policy.name,
    description: policy.description,
    activeVersion: activeVersionOf(policy).version,
    versions: policy.versions,
  }));
}

/** One SBOM as the listing shows it. */
export interface SbomSummary {
  id: string;
  product: string;
  components: number;
  findings: number;
}

/** The SBOMs the engine knows, with their sizes (what a caller may put in `sbomSet`). */
export function listSboms(data: PolicyEngineData): SbomSummary[] {
  return [...data.sboms.values()].map((sbom) => ({
    id: sbom.id,
    product: sbom.product,
    components: sbom.components.length,
    findings: sbom.components.reduce((sum, c) => sum + c.findings.length, 0),
  }));
}
