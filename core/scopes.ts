/** Scopes the API checks. Tokens carry them in `scope` (space-separated) or `scp` (array). */
export const Scope = {
  /** Run and read self-check workflows. */
  SelfCheck: 'system:self-check',
  /** Start, read, cancel and follow policy simulations; read their metrics. */
  PolicySimulate: 'policy:simulate',
  /** Create, pause, trigger and delete recurring simulation schedules. */
  PolicySchedule: 'policy:schedule',
  /** Post pack-approval events, read approvals, and approve or reject them. */
  PacksApprove: 'Packs.Approve',
  /** Post notification events (the Task Runner's service identity). */
  NotifierEventsWrite: 'Notifier.Events:Write',
  /** Manage routing rules and templates. */
  NotifierAdmin: 'Notifier.Admin',
  /** Post aggregate events to the sagas (the aggregates' service identity, and the reference Gateway). */
  RunnerEventsWrite: 'Runner.Events:Write',
  /** Read saga instances, their timelines, the unmatched and late events and the quarantined messages. */
  RunnerSagasRead: 'Runner.Sagas:Read',
  /**
   * Cancel and reset saga instances; redeliver unmatched, late and quarantined events (one at a time or in bulk);
   * discard quarantined messages.
   */
  RunnerSagasOperate: 'Runner.Sagas:Operate',
  /** Operate the Runner itself: its workers view, and its workers' drain and reload. Not bound to a tenant's data. */
  SystemAdmin: 'system:admin',
  /**
   * Decode (and encode) payloads through the codec endpoint, `/codec/decode` and `/codec/encode`: an operator's scope,
   * since decoding shows in plain what Temporal and the database hold encrypted. Not bound to a tenant's data.
   */
  PayloadsDecode: 'system:payloads:decode',
} as const;
export type Scope = (typeof Scope)[keyof typeof Scope];

/** Every scope, for the local development token. */
export const ALL_SCOPES: readonly string[] = Object.values(Scope);
