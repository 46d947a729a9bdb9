/**
 * Activities of policy simulations: the status projection, the evaluation through the Policy Engine over HTTP,
 * and the completion webhook. Every one is idempotent (keys derive from the workflow id).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from '../../core/logger.js';
import type { Pool } from '../../db/pool.js';
import { getPolicyRun, upsertPolicyRun, type UpsertResult } from '../../db/queries/policy-runs.js';
import { buildCompletionPayload } from '../../workflows/policy-simulation/completion.js';
import {
  SimulationFailure,
  type PolicyRunStatus,
  type SimulationResultSummary,
  type SimulationStats,
} from '../../workflows/policy-simulation/definitions.js';
import { Revision, runningStatus } from '../../workflows/policy-simulation/state.js';
import type { WebhookConfig, WebhookOutcome } from './webhook.js';
import { createWebhookSender } from './webhook.js';

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
  startedAt: string;
  attempts: number;
}

/** Failure type of an exhausted or refused webhook delivery. */
export const WEBHOOK_DELIVERY_FAILED = 'WebhookDeliveryFailed';

const HEARTBEAT_INTERVAL_MS = 2_000;

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Creates the activities; all I/O goes through `deps`. */
export function createPolicySimulationActivities(deps: PolicySimulationDeps) {
  const fetchFn = deps.fetch ?? globalThis.fetch;
  const sender = createWebhookSender({ config: deps.webhook, logger: deps.logger, fetch: fetchFn });

  return {
    /** Writes the status document at `revision` (idempotent; older revisions never overwrite newer ones). */
    recordPolicyRunStatus: async (input: { doc: PolicyRunStatus; revision: number; actor?: string }): Promise<UpsertResult> =>
      upsertPolicyRun(deps.pool, input.doc, input.revision, input.actor ? { actor: input.actor } : {}),

    /**
     * Marks the run `running` (keeping the first start time across retries) and asks the Policy Engine for the
     * verdict diff. Heartbeats while waiting so cancellation reaches it; 4xx answers are final, 5xx/408/429 and
     * network errors are retried by Temporal (honouring Retry-After).
     */
    evaluatePolicySimulation: async (input: { doc: PolicyRunStatus }): Promise<EvaluationOutcome> => {
      const ctx = Context.current();
      const { doc } = input;
      const stored = await getPolicyRun(deps.pool, doc.tenantId, doc.runId);
      const base = stored && stored.status === 'running' ? stored : doc;
      const running = runningStatus(base, new Date().toISOString(), ctx.info.attempt);
      await upsertPolicyRun(deps.pool, running, Revision.running);

      const heartbeat = setInterval(() => ctx.heartbeat({ phase: 'evaluating' }), HEARTBEAT_INTERVAL_MS);
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
          signal: AbortSignal.any([ctx.cancellationSignal, AbortSignal.timeout(deps.engineRequestTimeoutMs ?? 120_000)]),
        });
        const text = await response.text();
        if (response.ok) {
          const body = JSON.parse(text) as { stats: SimulationStats; result: SimulationResultSummary };
          return { stats: body.stats, result: body.result, startedAt: running.startedAt!, attempts: running.attempts };
        }
        let message = text.slice(0, 500);
        try {
          message = (JSON.parse(text) as { message?: string }).message ?? message;
        } catch {
          // not JSON: keep the text
        }
        const detail = `Policy Engine answered HTTP ${response.status}: ${message}`;
        if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
          throw ApplicationFailure.nonRetryable(detail, SimulationFailure.EngineRejected);
        }
        const delay = retryAfterMs(response.headers.get('retry-after'));
        throw ApplicationFailure.create({ message: detail, type: 'PolicyEngineUnavailable', ...(delay !== undefined ? { nextRetryDelay: delay } : {}) });
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
        const e = error as Error & { retryable?: boolean; retryAfterMs?: number };
        if (!e.retryable || attempt >= deps.webhook.maxAttempts) {
          throw ApplicationFailure.nonRetryable(`${e.message} (attempt ${attempt})`, WEBHOOK_DELIVERY_FAILED);
        }
        throw ApplicationFailure.create({
          message: e.message,
          type: 'WebhookDeliveryRetry',
          ...(e.retryAfterMs !== undefined ? { nextRetryDelay: e.retryAfterMs } : {}),
        });
      }
    },
  };
}

/** The policy simulation activities. */
export type PolicySimulationActivities = ReturnType<typeof createPolicySimulationActivities>;
