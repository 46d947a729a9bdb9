/**
 * Activities of the `effects` task queue: the only outbound calls of sagas. `runEffect` calls the provider the
 * effects manifest declares for an effect; `submitGatewayCommand` (./gateway.ts) submits a command to the Gateway.
 * Both go through the one outbound HTTP layer (`activities/shared/http.ts`) and a circuit breaker per upstream
 * (cockatiel), send the command id as `Idempotency-Key` (the same on every retry, so a provider or the Gateway sees
 * one logical call), heartbeat while they wait and stop when the activity is cancelled. The manifest's retry policy
 * is authoritative: each failure says when Temporal should try again (Retry-After, else the manifest's backoff),
 * and the last allowed attempt answers instead of failing.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import {
  BrokenCircuitError,
  circuitBreaker,
  ConsecutiveBreaker,
  handleWhen,
  type CircuitBreakerPolicy,
} from 'cockatiel';
import type { Logger } from '../../core/logger.js';
import {
  SagaFailure,
  type EffectCommand,
  type EffectResult,
  type SagaOutboundActivities,
} from '../../workflows/sagas/definitions.js';
import { DeliveryError, deliveryFailure, parseDeliveryUrl, postJson, type JsonPost } from '../shared/http.js';
import { whileHeartbeating } from '../shared/heartbeat.js';
import {
  backoffDelayMs,
  EffectsManifestError,
  expandUrlTemplate,
  isLastAttempt,
  UrlTemplateError,
  type BreakerSettings,
  type EffectsManifest,
} from './effects-manifest.js';
import { createGatewayCommandSubmitter } from './gateway.js';

/** The circuit breaker of one upstream (an origin), shared by every call to it from this worker. */
export interface UpstreamBreaker {
  upstream: string;
  settings: BreakerSettings;
  policy: CircuitBreakerPolicy;
  /** Milliseconds until the open breaker lets a probe through (at least 1). */
  remainingOpenMs(): number;
}

/** The breakers of a worker, one per upstream, created on first use with the settings of their first caller. */
export interface UpstreamBreakers {
  get(upstream: string, settings: BreakerSettings): UpstreamBreaker;
}

/**
 * Creates the breaker registry. Only failures worth retrying (5xx, 408, 429, timeouts, network errors) count: a
 * refusal (4xx) is an answer, so the upstream is up. An open breaker fails calls without sending them until
 * `halfOpenAfterMs` have passed; then one call probes the upstream and closes the breaker (success) or opens it again.
 */
export function createUpstreamBreakers(logger: Logger): UpstreamBreakers {
  const breakers = new Map<string, UpstreamBreaker>();
  return {
    get(upstream, settings) {
      const existing = breakers.get(upstream);
      if (existing) return existing;
      const policy = circuitBreaker(
        handleWhen((error) => error instanceof DeliveryError && error.retryable),
        { halfOpenAfter: settings.halfOpenAfterMs, breaker: new ConsecutiveBreaker(settings.threshold) },
      );
      // cockatiel keeps the opening time to itself: kept here too, so a fail-fast can say when to come back.
      let openedAt = 0;
      policy.onBreak(() => {
        openedAt = Date.now();
        logger.warn(
          { upstream, threshold: settings.threshold, halfOpenAfterMs: settings.halfOpenAfterMs },
          `circuit breaker of ${upstream} opened: calls fail fast for ${settings.halfOpenAfterMs} ms`,
        );
      });
      policy.onHalfOpen(() => logger.info({ upstream }, `circuit breaker of ${upstream} half-open: probing`));
      policy.onReset(() => logger.info({ upstream }, `circuit breaker of ${upstream} closed`));
      const breaker: UpstreamBreaker = {
        upstream,
        settings,
        policy,
        remainingOpenMs: () => Math.max(1, settings.halfOpenAfterMs - (Date.now() - openedAt)),
      };
      breakers.set(upstream, breaker);
      return breaker;
    },
  };
}

/** What became of one call through a breaker. */
export type UpstreamAnswer =
  /** A 2xx answer. */
  | { outcome: 'answered'; status: number; body: string }
  /** A final refusal: a 4xx other than 408/429, a redirect, or a request that could not be sent as it is. */
  | { outcome: 'refused'; error: DeliveryError }
  /** A failure worth retrying: 5xx, 408, 429, a timeout, a network error. */
  | { outcome: 'unavailable'; error: DeliveryError }
  /** Not sent: the upstream's breaker is open. */
  | { outcome: 'open'; retryInMs: number };

/**
 * Sends one request through `breaker`, heartbeating while it waits. Cancellation (`request.signal`) and bugs are
 * thrown as they are.
 */
export async function callUpstream(breaker: UpstreamBreaker, request: JsonPost): Promise<UpstreamAnswer> {
  return whileHeartbeating(async () => {
    try {
      return await breaker.policy.execute(async (): Promise<UpstreamAnswer> => {
        try {
          const { status, body = '' } = await postJson({ ...request, readBody: true });
          return { outcome: 'answered', status, body };
        } catch (error) {
          // A refusal is the upstream answering: it leaves the breaker as it is (and closes a half-open one).
          if (error instanceof DeliveryError && !error.retryable) return { outcome: 'refused', error };
          throw error;
        }
      });
    } catch (error) {
      if (error instanceof BrokenCircuitError) return { outcome: 'open', retryInMs: breaker.remainingOpenMs() };
      if (error instanceof DeliveryError) return { outcome: 'unavailable', error };
      throw error;
    }
  });
}

/**
 * The headers that identify a saga's call to its receiver: the command id as `Idempotency-Key`, the tenant, and the
 * correlation and trace context when there are any.
 */
export function commandHeaders(ids: {
  commandId: string;
  tenantId: string;
  correlationId?: string | undefined;
  traceparent?: string | undefined;
}): Record<string, string> {
  return {
    'Idempotency-Key': ids.commandId,
    'x-tenant-id': ids.tenantId,
    ...(ids.correlationId && { 'x-correlation-id': ids.correlationId }),
    ...(ids.traceparent && { traceparent: ids.traceparent }),
  };
}

/** Why a call did not go out or failed: the open breaker of `upstream`, or the delivery error. */
export function unavailableMessage(
  answer: Extract<UpstreamAnswer, { outcome: 'unavailable' | 'open' }>,
  what: string,
  upstream: string,
): string {
  return answer.outcome === 'open'
    ? `${what} not sent: the circuit breaker of ${upstream} is open`
    : answer.error.message;
}

/** A JSON answer as a payload: an object as it is, anything else under `value`, an empty body as `{}`. */
export function payloadOf(body: string): Record<string, unknown> {
  if (body.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { value: body };
  }
  return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
    ? (parsed as Record<string, unknown>)
    : { value: parsed };
}

/** The peer's own words for a refusal: its `message` (or `error`), else its body (shortened), else the status. */
export function refusalMessage(error: DeliveryError): string {
  const body = payloadOf(error.body ?? '');
  for (const key of ['message', 'error'] as const) {
    const value = body[key];
    if (typeof value === 'string' && value !== '') return value;
  }
  const text = (error.body ?? '').trim();
  if (text !== '') return text.length > 500 ? `${text.slice(0, 497)}...` : text;
  return error.status !== undefined ? `HTTP ${error.status}` : error.message;
}

/** Dependencies of the effect and Gateway-command activities. */
export interface EffectActivityDeps {
  manifest: EffectsManifest;
  logger: Logger;
  /** Base URL of the Gateway (`gatewayUrlOf(config)`). */
  gatewayUrl: string;
  /** Breakers shared with other activity sets of the process (a new registry by default). */
  breakers?: UpstreamBreakers;
}

/** The activities of the `effects` queue, as plain functions (the contract is `SagaOutboundActivities`). */
export interface EffectActivities {
  runEffect: SagaOutboundActivities['runEffect'];
  submitGatewayCommand: SagaOutboundActivities['submitGatewayCommand'];
}

/**
 * Creates `runEffect` and `submitGatewayCommand`, sharing one breaker per upstream.
 * @throws EffectsManifestError when the Gateway shares an upstream with a provider but not its breaker settings;
 *   DeliveryError when the Gateway URL breaks the outbound URL policy.
 */
export function createEffectActivities(deps: EffectActivityDeps): EffectActivities {
  const { manifest, logger } = deps;
  const breakers = deps.breakers ?? createUpstreamBreakers(logger);
  const gatewayOrigin = parseDeliveryUrl(deps.gatewayUrl).origin;
  for (const provider of manifest.providers.values()) {
    const { threshold, halfOpenAfterMs } = manifest.gateway.breaker;
    if (
      provider.upstream === gatewayOrigin &&
      (provider.breaker.threshold !== threshold || provider.breaker.halfOpenAfterMs !== halfOpenAfterMs)
    ) {
      throw new EffectsManifestError(manifest.source, [
        `gateway.breaker must equal the breaker of ${provider.name}: both call ${gatewayOrigin}, and one breaker guards one upstream`,
      ]);
    }
  }

  const runEffect = async (command: EffectCommand): Promise<EffectResult> => {
    const ctx = Context.current();
    const { attempt } = ctx.info;
    const { tenantId, commandId, effectName } = command;
    const result = (resultType: EffectResult['resultType'], payload: Record<string, unknown>): EffectResult => ({
      tenantId,
      commandId,
      effectName,
      resultType,
      payload,
      timestamp: new Date().toISOString(),
    });
    const provider = manifest.providers.get(effectName);
    if (!provider) {
      throw ApplicationFailure.create({
        message: `The effect ${effectName} is not declared in the effects manifest ${manifest.source}`,
        type: SagaFailure.EffectNotConfigured,
        nonRetryable: true,
      });
    }
    const correlationId = command.metadata.correlationId;
    const logFields = { tenantId, commandId, effectName, ...(correlationId && { correlationId }), attempt };
    const what = `effect ${effectName} (command ${commandId})`;

    let url: URL;
    try {
      url = parseDeliveryUrl(expandUrlTemplate(provider.url, command));
    } catch (error) {
      if (!(error instanceof UrlTemplateError) && !(error instanceof DeliveryError)) throw error;
      // The saga's input cannot be sent as it is: another attempt would be refused again, so the saga decides.
      const message = `${what} not sent: ${error.message}`;
      logger.warn(logFields, message);
      return result('rejected', { status: null, message });
    }
    const headers = {
      ...provider.headers,
      ...commandHeaders({ commandId, tenantId, correlationId, traceparent: command.metadata.traceparent }),
    };
    const answer = await callUpstream(breakers.get(provider.upstream, provider.breaker), {
      url,
      method: provider.method,
      body: JSON.stringify(command.payload),
      headers,
      timeoutMs: provider.timeoutMs,
      logger,
      logFields,
      what,
      signal: ctx.cancellationSignal,
    });
    switch (answer.outcome) {
      case 'answered':
        return result('succeeded', payloadOf(answer.body));
      case 'refused':
        return result('rejected', { status: answer.error.status ?? null, message: refusalMessage(answer.error) });
      case 'unavailable':
      case 'open': {
        const message = unavailableMessage(answer, what, provider.upstream);
        if (isLastAttempt(provider.retry, attempt)) {
          logger.warn({ ...logFields, retryable: false }, `${message}; giving up after ${attempt} attempts`);
          return result('failed', {
            ...(answer.outcome === 'unavailable' && { status: answer.error.status ?? null }),
            message,
            attempts: attempt,
          });
        }
        if (answer.outcome === 'open') {
          logger.warn({ ...logFields, retryInMs: answer.retryInMs }, message);
          throw ApplicationFailure.create({
            message,
            type: SagaFailure.EffectUnavailable,
            nextRetryDelay: answer.retryInMs,
          });
        }
        throw deliveryFailure(answer.error, {
          finalType: SagaFailure.EffectUnavailable,
          retryType: SagaFailure.EffectUnavailable,
          defaultRetryDelayMs: backoffDelayMs(provider.retry, attempt),
        });
      }
    }
  };

  return {
    runEffect,
    submitGatewayCommand: createGatewayCommandSubmitter({
      gatewayUrl: deps.gatewayUrl,
      policy: manifest.gateway,
      breakers,
      logger,
    }),
  } satisfies SagaOutboundActivities;
}
