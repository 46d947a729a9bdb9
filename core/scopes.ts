/** Scopes the API checks. Tokens carry them in `scope` (space-separated) or `scp` (array). */
export const Scope = {
  /** Run and read self-check workflows. */
  SelfCheck: 'system:self-check',
} as const;
export type Scope = (typeof Scope)[keyof typeof Scope];

/** Every scope, for the local development token. */
export const ALL_SCOPES: readonly string[] = Object.values(Scope);
