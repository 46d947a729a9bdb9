/**
 * Activities of policy simulations: the status projection, the evaluation through the Policy Engine over HTTP,
 * and the completion webhook. Every one is idempotent (keys derive from the workflow id).
 */
import { Context } from '@temporalio/activity';
import type { Logger } from '../../core/logger.js';
import type { Pool } from '../../db/pool.js';
import { getPolicyRun, upsertPolicyRun, type UpsertResult } from '../../db/queries/policy-simulations.js';
import { buildCompletionPayload } from '../../workflows/policy-simulation/completion.js';
import {
  SimulationFailure,
  type PolicyRunStatus,
  type SimulationResultSummary,
  type SimulationStats,
} from '../../workflows/policy-simulation/definitions.js';
import { Revision, runningStatus } from '../../workflows/policy-simulation/state.js';
import type { WebhookConfig } from '../../core/config.js';
import { createWebhookSender, type WebhookOutcome } from './webhook.js';
import { DeliveryError, deliveryFailure, postJson } from '../shared/http.js';
import { refuseDataErrors } from '../shared/data-errors.js';
import { whileHeartbeating } from '../shared/heartbeat.js';

/** Dependencies of the policy simulation activities. */
export interface PolicySimulationDeps {
  pool: Pool;
  logger: Logger;
  /** Base URL of the Policy Engine. */
  policyEngineUrl: string;
  webhook: WebhookConfig;
  /** Per-request timeout of an engine call (the workflow bounds the whole evaluation). */
  engineRequestTimeoutMs?: number;
  fetch?: typeof globalThis.fetch;
}

/** What an evaluation returns to the workflow. */
export interface EvaluationOutcome {
  stats: SimulationStats;
  result: SimulationResultSummary;
  attempts: number;
}

/**
 * The message of a failed engine call: the engine's own `message` (or the start of its answer) for an HTTP
 * failure, the timeout or network failure otherwise.
 */
function engineFailureMessage(error: DeliveryError): string {
  if (error.kind !== 'http') return error.message;
  const text = error.body ?? '';
  let message = text.slice(0, 500);
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? message;
  } catch {
    // not JSON: keep the text
  }
  return `Policy Engine answered HTTP ${error.status}: ${message}`;
}

/** Creates the activities; all I/O goes through `deps`. */
export function createPolicySimulationActivities(deps: PolicySimulationDeps) {
  const fetchFn = deps.fetch ?? globalThis.fetch;
  const sender = createWebhookSender({ config: deps.webhook, logger: deps.logger, fetch: fetchFn });
  const engineUrl = new URL('/api/v1/simulations/evaluate', deps.policyEngineUrl);

  return refuseDataErrors({
    /** Writes the status document at `revision` (idempotent; older revisions never overwrite newer ones). */
    recordPolicyRunStatus: async (input: {
      doc: PolicyRunStatus;
      revision: number;
      actor?: string;
    }): Promise<UpsertResult> =>
      upsertPolicyRun(deps.pool, input.doc, input.revision, input.actor ? { actor: input.actor } : {}),

    /** Marks the run `running` when a worker picks up the evaluation; returns the start time. */
    markPolicyRunRunning: async (input: { doc: PolicyRunStatus }): Promise<{ startedAt: string }> => {
      const stored = await getPolicyRun(deps.pool, input.doc.tenantId, input.doc.runId);
      // A retried activity keeps the first start time.
      const startedAt = stored?.startedAt ?? new Date().toISOString();
      await upsertPolicyRun(deps.pool, runningStatus(input.doc, startedAt, 1), Revision.running);
      return { startedAt };
    },

    /**
     * Asks the Policy Engine for the verdict diff. Heartbeats while waiting so cancellation reaches it; 4xx answers
     * are final, 5xx/408/429 and network errors are retried by Temporal (honouring Retry-After). Failures carry
     * `{ attempt }` as details so the run document can count attempts.
     */
    evaluatePolicySimulation: async (input: { doc: PolicyRunStatus }): Promise<EvaluationOutcome> => {
      const ctx = Context.current();
      const { doc } = input;
      const attempt = ctx.info.attempt;
      if (attempt > 1) await upsertPolicyRun(deps.pool, runningStatus(doc, doc.startedAt!, attempt), Revision.running);

      try {
        const { body } = await whileHeartbeating(
          () =>
            postJson({
              url: engineUrl,
              body: JSON.stringify({
                tenantId: doc.tenantId,
                runId: doc.runId,
                policyId: doc.policyId,
                policyVersion: doc.policyVersion,
                ...doc.inputs,
              }),
              headers: { 'Idempotency-Key': `${doc.workflowId}/evaluate`, 'X-StellaOps-Tenant': doc.tenantId },
              timeoutMs: deps.engineRequestTimeoutMs ?? 120_000,
              signal: ctx.cancellationSignal,
              readBody: true,
              logger: deps.logger,
              logFields: { tenantId: doc.tenantId, runId: doc.runId, attempt },
              what: `Policy Engine call for run ${doc.runId}`,
              successLevel: 'debug',
              fetch: fetchFn,
            }),
          { attempt },
        );
        const answer = JSON.parse(body ?? '') as { stats: SimulationStats; result: SimulationResultSummary };
        return { stats: answer.stats, result: answer.result, attempts: attempt };
      } catch (error) {
        if (ctx.cancellationSignal.aborted || !(error instanceof DeliveryError)) throw error;
        throw deliveryFailure(error, {
          finalType: SimulationFailure.EngineRejected,
          retryType: SimulationFailure.EngineUnavailable,
          message: engineFailureMessage(error),
          details: [{ attempt }],
        });
      }
    },

    /**
     * Sends the completion webhook of a terminal run. Disabled → no call. Failures are logged (WARN
     * `Policy run job …`) and retried up to the configured number of attempts; receivers dedupe on the run id.
     */
    notifySimulationCompleted: async (input: { doc: PolicyRunStatus }): Promise<WebhookOutcome> => {
      const { attempt } = Context.current().info;
      try {
        const payload = buildCompletionPayload(input.doc, new Date().toISOString());
        return await whileHeartbeating(() => sender.send(payload, input.doc.runId));
      } catch (error) {
        const final = !(error instanceof DeliveryError) || !error.retryable || attempt >= deps.webhook.maxAttempts;
        throw deliveryFailure(error, {
          finalType: SimulationFailure.WebhookDeliveryFailed,
          retryType: SimulationFailure.WebhookDeliveryRetry,
          final,
          ...(final && error instanceof Error && { message: `${error.message} (attempt ${attempt})` }),
        });
      }
    },
  });
}

/** The policy simulation activities. */
export type PolicySimulationActivities = ReturnType<typeof createPolicySimulationActivities>;
