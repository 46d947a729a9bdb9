/**
 * The pack-approval capability of the API, shared by its two doors: the JSON routes (bearer token or link token)
 * and the approval page behind mailed links. Both decide through {@link PackApprovalService.decide}, so every
 * decision is recorded by the workflow's Update, counted in the ack-latency histogram and answered with a resume
 * token alike.
 */
import { signResumeToken } from '../../notify/approval-links.js';
import { getApprovalView } from '../../db/queries/pack-approvals.js';
import type { AckApprovalArgs, AckResult, PackApprovalEvent } from '../../workflows/pack-approval/definitions.js';
import type { AppDeps } from '../deps.js';
import { registerPackApprovalMetrics } from '../metrics.js';
import { createPackApprovalTemporal, type ApprovalIds } from '../temporal/pack-approvals.js';

/** A recorded decision and the resume token for CLI use. */
export interface DecisionOutcome {
  /** The workflow's answer; `repeated` when it repeats an earlier identical decision. */
  result: AckResult;
  /** Signed by this service with the approval-link secret (never the Task Runner's own secret). */
  resumeToken: string;
}

/** What the pack-approval routes do beyond HTTP. */
export interface PackApprovalService {
  /** Delivers an accepted event to its approval's workflow (starting it); answers the workflow id. */
  signalEvent(event: PackApprovalEvent): Promise<string>;
  /**
   * Records a human decision, however it arrived. A first decision is observed in
   * `stellaops_pack_approval_ack_latency_seconds` (request to decision); repeats are not.
   * @throws 404 unknown approval, 403 grants missing, 409 decided differently or no longer pending.
   */
  decide(ids: ApprovalIds, args: AckApprovalArgs): Promise<DecisionOutcome>;
}

/** Creates the service once per app: the Temporal binding with the capability's settings, and its metrics. */
export function createPackApprovalService(deps: AppDeps): PackApprovalService {
  const { pool, config } = deps;
  const temporal = createPackApprovalTemporal(deps.temporal, {
    reminderOffsetsSeconds: config.packApprovals.reminderOffsetsSeconds,
    defaultTtlSeconds: config.packApprovals.defaultTtlSeconds,
    taskQueuePrefix: deps.taskQueuePrefix,
  });
  const { ackLatency } = registerPackApprovalMetrics(deps.metrics, pool, deps.logger);
  const { linkSecret } = deps.packApprovalSecrets;

  return {
    signalEvent: (event) => temporal.signalEvent(event),

    async decide(ids, args) {
      const result = await temporal.ack(ids, args);
      // The request time comes from the projection; when it cannot be read the decision still stands, unmeasured.
      const view = result.repeated
        ? undefined
        : await getApprovalView(pool, ids.tenantId, ids.runId, ids.approvalId).catch(() => undefined);
      if (view) {
        ackLatency.observe(Math.max(0, (Date.parse(result.decidedAt) - Date.parse(view.requestedAt)) / 1000));
      }
      const resumeToken = await signResumeToken(linkSecret, {
        ...ids,
        decision: result.decision,
        decidedBy: result.decidedBy,
      });
      return { result, resumeToken };
    },
  };
}
