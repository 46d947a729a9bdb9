/**
 * Activities of policy simulations: the status projection, the evaluation through the Policy Engine over HTTP,
 * and the completion webhook. Every one is idempotent (keys derive from the workflow id).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
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
import { createWebhookSender, WebhookDeliveryError, type WebhookConfig, type WebhookOutcome } from './webhook.js';
import { isRetryableStatus, outboundFailure, parseRetryAfter } from '../shared/http.js';

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

/** Failure type of an exhausted or refused webhook delivery. */
export const WEBHOOK_DELIVERY_FAILED = 'WebhookDeliveryFailed';

const HEARTBEAT_INTERVAL_MS = 2_000;

/** Creates the activities; all I/O goes through `deps`. */
export function createPolicySimulationActivities(deps: PolicySimulationDeps) {
  const fetchFn = deps.fetch ?? globalThis.fetch;
  const sender = createWebhookSender({ config: deps.webhook, logger: deps.logger, fetch: fetchFn });

  return {
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

      const heartbeat = setInterval(() => ctx.heartbeat({ attempt }), HEARTBEAT_INTERVAL_MS);
      try {
        const response = await fetchFn(new URL('/api/v1/simulations/evaluate', deps.policyEngineUrl), {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'idempotency-key': `${doc.workflowId}/evaluate`,
            'x-stellaops-tenant': doc.tenantId,
          },
          body: JSON.stringify({
            tenantId: doc.tenantId,
            runId: doc.runId,
            policyId: doc.policyId,
            policyVersion: doc.policyVersion,
            ...doc.inputs,
          }),
          signal: AbortSignal.any([
            ctx.cancellationSignal,
            AbortSignal.timeout(deps.engineRequestTimeoutMs ?? 120_000),
          ]),
        });
        const text = await response.text();
        if (response.ok) {
          const body = JSON.parse(text) as { stats: SimulationStats; result: SimulationResultSummary };
          return { stats: body.stats, result: body.result, attempts: attempt };
        }
        let message = text.slice(0, 500);
        try {
          message = (JSON.parse(text) as { message?: string }).message ?? message;
        } catch {
          // not JSON: keep the text
        }
        const detail = `Policy Engine answered HTTP ${response.status}: ${message}`;
        throw outboundFailure(detail, {
          retryable: isRetryableStatus(response.status),
          retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
          finalType: SimulationFailure.EngineRejected,
          retryType: 'PolicyEngineUnavailable',
          details: [{ attempt }],
        });
      } catch (error) {
        if (error instanceof ApplicationFailure || ctx.cancellationSignal.aborted) throw error;
        // Network errors and per-request timeouts: retryable.
        throw ApplicationFailure.create({
          message: `Policy Engine unreachable: ${(error as Error).message}`,
          type: 'PolicyEngineUnavailable',
          details: [{ attempt }],
        });
      } finally {
        clearInterval(heartbeat);
      }
    },

    /**
     * Sends the completion webhook of a terminal run. Disabled → no call. Failures are logged (WARN
     * `Policy run job …`) and retried up to the configured number of attempts; receivers dedupe on the run id.
     */
    notifySimulationCompleted: async (input: { doc: PolicyRunStatus }): Promise<WebhookOutcome> => {
      const { attempt } = Context.current().info;
      try {
        return await sender.send(buildCompletionPayload(input.doc, new Date().toISOString()), input.doc.runId);
      } catch (error) {
        if (!(error instanceof WebhookDeliveryError)) throw error;
        const final = !error.retryable || attempt >= deps.webhook.maxAttempts;
        throw outboundFailure(final ? `${error.message} (attempt ${attempt})` : error.message, {
          retryable: !final,
          retryAfterMs: error.retryAfterMs,
          finalType: WEBHOOK_DELIVERY_FAILED,
          retryType: 'WebhookDeliveryRetry',
        });
      }
    },
  };
}

/** The policy simulation activities. */
export type PolicySimulationActivities = ReturnType<typeof createPolicySimulationActivities>;
