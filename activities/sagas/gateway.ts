/**
 * Gateway commands: `POST {gatewayUrl}/api/v1/commands` with the command as body and `x-tenant-id`,
 * `x-correlation-id`, `traceparent` and `Idempotency-Key: commandId` headers, through the circuit breaker of the
 * Gateway's origin (shared with any provider on the same upstream) and with the manifest's `gateway` timeout and
 * retries. The aggregate refusing a command (409, 422) comes back as a `rejected` result the saga can compensate
 * on; any other refusal is final; the Gateway being unavailable is retried.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from '../../core/logger.js';
import { SagaFailure, type GatewayCommand, type GatewayResult } from '../../workflows/sagas/definitions.js';
import { deliveryFailure, parseDeliveryUrl } from '../shared/http.js';
import { backoffDelayMs, isLastAttempt, type CallPolicy } from './effects-manifest.js';
import {
  callUpstream,
  commandHeaders,
  payloadOf,
  refusalMessage,
  unavailableMessage,
  type UpstreamBreakers,
} from './effects.js';

/** Path of the Gateway's command endpoint, under its base URL. */
export const GATEWAY_COMMANDS_PATH = '/api/v1/commands';

/** Statuses of the aggregate refusing a command because of its state: the saga's to act on. */
const AGGREGATE_REFUSALS = new Set([409, 422]);

/** Dependencies of {@link createGatewayCommandSubmitter}. */
export interface GatewayDeps {
  /** Base URL of the Gateway: `https`, or `http` to a loopback host. */
  gatewayUrl: string;
  /** Timeout, retries and breaker of Gateway commands (the manifest's `gateway`). */
  policy: CallPolicy;
  breakers: UpstreamBreakers;
  logger: Logger;
}

/**
 * Creates the `submitGatewayCommand` activity.
 * @throws DeliveryError when `gatewayUrl` breaks the outbound URL policy (a start-up error).
 */
export function createGatewayCommandSubmitter(deps: GatewayDeps) {
  const { policy, logger } = deps;
  const url = parseDeliveryUrl(`${deps.gatewayUrl.replace(/\/$/, '')}${GATEWAY_COMMANDS_PATH}`);
  const breaker = deps.breakers.get(url.origin, policy.breaker);

  return async (input: { command: GatewayCommand; traceparent?: string }): Promise<GatewayResult> => {
    const ctx = Context.current();
    const { attempt } = ctx.info;
    const { command } = input;
    const logFields = {
      tenantId: command.tenantId,
      commandId: command.commandId,
      commandType: command.commandType,
      correlationId: command.correlationId,
      attempt,
    };
    const what = `Gateway command ${command.commandType} (command ${command.commandId})`;
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
}
