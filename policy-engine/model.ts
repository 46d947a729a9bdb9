/**
 * The data model of the reference Policy Engine: the policy catalogue (declarative rules per policy version) and
 * the findings data (SBOMs → components → findings), as TypeBox schemas so the same definitions validate the
 * bundled JSON and type the code.
 *
 * Rule model (one policy version), evaluated per finding in this fixed precedence — the first step that
 * decides wins:
 *   1. `honorVex`: the finding's VEX status is listed → `pass` (the vendor/triage statement is trusted).
 *   2. `ignoreWithoutFix`: true and the finding has no fix available → `pass` (nothing actionable to gate on).
 *   3. `block` criteria: any criterion matches → `block`.
 *   4. `warn` criteria: any criterion matches → `warn`.
 *   5. otherwise → `pass`.
 * A criteria object (`block`, `warn`) matches a finding when ANY of its present criteria matches:
 *   `severities` contains the finding's severity; `kev: true` and the finding is in CISA KEV;
 *   `cvss >= cvssAtLeast`; `epss >= epssAtLeast` (a finding without an EPSS score never matches this one).
 * An empty criteria object matches nothing.
 */
import { Type, type Static } from '@sinclair/typebox';

/** Advisory severities, most severe first. */
export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
/** Advisory severity of a finding. */
export const Severity = Type.Union(
  SEVERITIES.map((s) => Type.Literal(s)),
  { description: 'Advisory severity' },
);
export type Severity = (typeof SEVERITIES)[number];

/** OpenVEX-style statuses a finding can carry. */
export const VEX_STATUSES = ['affected', 'not_affected', 'fixed', 'under_investigation'] as const;
/** VEX status of a finding. */
export const VexStatus = Type.Union(
  VEX_STATUSES.map((s) => Type.Literal(s)),
  { description: 'VEX status of the finding for this product' },
);
export type VexStatus = (typeof VEX_STATUSES)[number];

/** One vulnerability finding on one component. */
export const Finding = Type.Object(
  {
    advisoryId: Type.String({ pattern: '^(CVE-\\d{4}-\\d{4,}|GHSA(-[23456789cfghjmpqrvwx]{4}){3})$' }),
    severity: Severity,
    cvss: Type.Number({ minimum: 0, maximum: 10 }),
    kev: Type.Boolean({ description: 'Listed in the CISA Known Exploited Vulnerabilities catalogue' }),
    epss: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'EPSS exploit probability' })),
    vex: VexStatus,
    fixAvailable: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type Finding = Static<typeof Finding>;

/** A component of an SBOM (purl without version, plus the version) with its findings. */
export const Component = Type.Object(
  {
    name: Type.String({ minLength: 1, pattern: '^pkg:' }),
    version: Type.String({ minLength: 1 }),
    findings: Type.Array(Finding),
  },
  { additionalProperties: false },
);
export type Component = Static<typeof Component>;

/** One SBOM: a product build and its components. */
export const Sbom = Type.Object(
  {
    id: Type.String({ pattern: '^sbom-[a-z0-9-]+$' }),
    product: Type.String({ minLength: 1 }),
    components: Type.Array(Component),
  },
  { additionalProperties: false },
);
export type Sbom = Static<typeof Sbom>;

/** The findings data file (`samples/policy-engine/findings.json`). */
export const FindingsData = Type.Object(
  {
    note: Type.Optional(Type.String()),
    sboms: Type.Array(Sbom),
  },
  { additionalProperties: false },
);
export type FindingsData = Static<typeof FindingsData>;

/** Criteria of a `block` or `warn` rule; the rule matches when any present criterion matches. */
export const RuleCriteria = Type.Object(
  {
    severities: Type.Optional(Type.Array(Severity, { uniqueItems: true })),
    kev: Type.Optional(Type.Boolean()),
    cvssAtLeast: Type.Optional(Type.Number({ minimum: 0, maximum: 10 })),
    epssAtLeast: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  },
  { additionalProperties: false },
);
export type RuleCriteria = Static<typeof RuleCriteria>;

/** The declarative rules of one policy version (see the module comment for the precedence). */
export const PolicyRules = Type.Object(
  {
    block: RuleCriteria,
    warn: RuleCriteria,
    honorVex: Type.Array(VexStatus, { uniqueItems: true }),
    ignoreWithoutFix: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type PolicyRules = Static<typeof PolicyRules>;

/** One version of a policy; exactly one version per policy is `active`. */
export const PolicyVersion = Type.Object(
  {
    version: Type.Integer({ minimum: 1 }),
    active: Type.Boolean(),
    description: Type.String(),
    rules: PolicyRules,
  },
  { additionalProperties: false },
);
export type PolicyVersion = Static<typeof PolicyVersion>;

/** A policy and its versions. */
export const Policy = Type.Object(
  {
    id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$' }),
    name: Type.String({ minLength: 1 }),
    description: Type.String(),
    versions: Type.Array(PolicyVersion, { minItems: 1 }),
  },
  { additionalProperties: false },
);
export type Policy = Static<typeof Policy>;

/** The policy catalogue file (`samples/policy-engine/policies.json`). */
export const PolicyCatalogue = Type.Object(
  {
    note: Type.Optional(Type.String()),
    policies: Type.Array(Policy),
  },
  { additionalProperties: false },
);
export type PolicyCatalogue = Static<typeof PolicyCatalogue>;
