/**
 * Gateway commands: `POST {gatewayUrl}/api/v1/commands` with the command as body and `x-tenant-id`,
 * `x-correlation-id`, `traceparent` and `Idempotency-Key: commandId` headers, through the circuit breaker of the
 * Gateway's origin (shared with any provider on the same upstream) and with the manifest's `gateway` timeout and
 * retries. The aggregate refusing a command (409, 422) comes back as a `rejected` result the saga can compensate
 * on; any other refusal is final; the Gateway being unavailable is retried. The final outcome — accepted, rejected,
 * or failed (refused for good, or retries exhausted) — is published to the workflow stream before the activity
 * completes, when the egress is on.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from '../../core/logger.js';
import { SagaFailure, type GatewayCommand, type GatewayResult } from '../../workflows/sagas/definitions.js';
import type { RunnerMetrics } from '../../workers/runner-metrics.js';
import { deliveryFailure, parseDeliveryUrl } from '../shared/http.js';
import { backoffDelayMs, isLastAttempt, type EffectsManifestSource } from './effects-manifest.js';
import {
  attemptMetrics,
  callUpstream,
  commandHeaders,
  payloadOf,
  refusalMessage,
  unavailableMessage,
  type UpstreamBreakers,
} from './effects.js';
import type { CommandOutcomeEvent, WorkflowEventPublisher } from './egress.js';

/** Path of the Gateway's command endpoint, under its base URL. */
export const GATEWAY_COMMANDS_PATH = '/api/v1/commands';

/** Statuses of the aggregate refusing a command because of its state: the saga's to act on. */
const AGGREGATE_REFUSALS = new Set([409, 422]);

/** Dependencies of {@link createGatewayCommandSubmitter}. */
export interface GatewayDeps {
  /** Base URL of the Gateway: `https`, or `http` to a loopback host. */
  gatewayUrl: string;
  /** The effects manifest, whose `gateway` section (timeout, retries, breaker) is read on every call. */
  manifest: EffectsManifestSource;
  breakers: UpstreamBreakers;
  logger: Logger;
  /** Publishes final outcomes to the workflow stream; nothing is published without it. */
  egress?: WorkflowEventPublisher | undefined;
  metrics?: RunnerMetrics | undefined;
}

/** The metrics label of Gateway commands among the effects. */
const GATEWAY_EFFECT = 'gateway';

/**
 * Creates the `submitGatewayCommand` activity.
 * @throws DeliveryError when `gatewayUrl` breaks the outbound URL policy (a start-up error).
 */
export function createGatewayCommandSubmitter(deps: GatewayDeps) {
  const { logger, egress } = deps;
  const url = parseDeliveryUrl(`${deps.gatewayUrl.replace(/\/$/, '')}${GATEWAY_COMMANDS_PATH}`);
  const measure = attemptMetrics(deps.metrics, GATEWAY_EFFECT);

  const submit = async (input: { command: GatewayCommand; traceparent?: string }): Promise<GatewayResult> => {
    const ctx = Context.current();
    const { attempt } = ctx.info;
    const { command } = input;
    const policy = deps.manifest.current().gateway;
    const breaker = deps.breakers.get(url.origin, policy.breaker);
    const logFields = {
      tenantId: command.tenantId,
      commandId: command.commandId,
      commandType: command.commandType,
      correlationId: command.correlationId,
      attempt,
    };
    const what = `Gateway command ${command.commandType} (command ${command.commandId})`;
    const startedAt = performance.now();
    const answer = await callUpstream(breaker, {
      url,
      body: JSON.stringify(command),
      headers: commandHeaders({ ...command, traceparent: input.traceparent }),
      timeoutMs: policy.timeoutMs,
      logger,
      logFields,
      what,
      signal: ctx.cancellationSignal,
    });
    // A call the open breaker never sent says nothing about the upstream's answer times.
    if (answer.outcome !== 'open') measure.duration(startedAt);
    switch (answer.outcome) {
      case 'answered':
        return {
          commandId: command.commandId,
          outcome: 'accepted',
          httpStatus: answer.status,
          body: payloadOf(answer.body),
        };
      case 'refused': {
        const status = answer.error.status;
        if (status !== undefined && AGGREGATE_REFUSALS.has(status)) {
          return {
            commandId: command.commandId,
            outcome: 'rejected',
            httpStatus: status,
            body: { ...payloadOf(answer.error.body ?? ''), message: refusalMessage(answer.error) },
          };
        }
        throw deliveryFailure(answer.error, {
          finalType: SagaFailure.CommandRejected,
          retryType: SagaFailure.GatewayUnavailable,
          message: `${what} refused: ${refusalMessage(answer.error)}`,
        });
      }
      case 'unavailable':
      case 'open': {
        const message = unavailableMessage(answer, what, breaker.upstream);
        const last = isLastAttempt(policy.retry, attempt);
        if (answer.outcome === 'open') {
          logger.warn({ ...logFields, retryInMs: answer.retryInMs }, message);
          throw ApplicationFailure.create({
            message: last ? `${message}; giving up after ${attempt} attempts` : message,
            type: SagaFailure.GatewayUnavailable,
            nonRetryable: last,
            ...(!last && { nextRetryDelay: answer.retryInMs }),
          });
        }
        throw deliveryFailure(answer.error, {
          finalType: SagaFailure.GatewayUnavailable,
          retryType: SagaFailure.GatewayUnavailable,
          final: last,
          ...(last && { message: `${message}; giving up after ${attempt} attempts` }),
          defaultRetryDelayMs: backoffDelayMs(policy.retry, attempt),
        });
      }
    }
  };

  /** The outcome as the workflow stream carries it: the command's identity and the Gateway's answer. */
  const outcomeOf = (
    command: GatewayCommand,
    outcome: CommandOutcomeEvent['outcome'],
    httpStatus: number | null,
    body: Record<string, unknown>,
  ): CommandOutcomeEvent => ({
    tenantId: command.tenantId,
    commandId: command.commandId,
    commandType: command.commandType,
    aggregateType: command.aggregateType,
    aggregateId: command.aggregateId,
    correlationId: command.correlationId,
    causationId: command.causationId,
    outcome,
    httpStatus,
    body,
    timestamp: new Date().toISOString(),
  });

  // Final outcomes are published before the activity completes (a publish that is not acked fails the attempt, which
  // Temporal retries: the Gateway answers the same command id again); an attempt to be retried publishes nothing.
  return async (input: { command: GatewayCommand; traceparent?: string }): Promise<GatewayResult> => {
    const context = input.traceparent ? { traceparent: input.traceparent } : {};
    let result: GatewayResult;
    try {
      result = await submit(input);
    } catch (error) {
      if (!(error instanceof ApplicationFailure) || !error.nonRetryable) {
        if (error instanceof ApplicationFailure) measure.result('unavailable');
        throw error;
      }
      await egress?.publishCommandOutcome(
        outcomeOf(input.command, 'failed', null, { message: error.message }),
        context,
      );
      measure.result('failed');
      throw error;
    }
    await egress?.publishCommandOutcome(
      outcomeOf(input.command, result.outcome, result.httpStatus, result.body),
      context,
    );
    measure.result(result.outcome);
    return result;
  };
}
