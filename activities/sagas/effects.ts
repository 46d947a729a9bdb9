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
import { BREAKER_STATE_VALUES, type BreakerStateName, type RunnerMetrics } from '../../workers/runner-metrics.js';
import {
  SagaFailure,
  type EffectCommand,
  type EffectResult,
  type SagaOutboundActivities,
} from '../../workflows/sagas/definitions.js';
import { DeliveryError, deliveryFailure, parseDeliveryUrl, postJson, type JsonPost } from '../shared/http.js';
import { whileHeartbeating } from '../shared/heartbeat.js';
import {
  assertGatewayBreakerShared,
  backoffDelayMs,
  expandUrlTemplate,
  isLastAttempt,
  sameBreaker,
  UrlTemplateError,
  type BreakerSettings,
  type EffectsManifestSource,
} from './effects-manifest.js';
import type { WorkflowEventPublisher } from './egress.js';
import { createGatewayCommandSubmitter } from './gateway.js';

/** The circuit breaker of one upstream (an origin), shared by every call to it from this worker. */
export interface UpstreamBreaker {
  upstream: string;
  settings: BreakerSettings;
  policy: CircuitBreakerPolicy;
  /** Milliseconds until the open breaker lets a probe through (at least 1). */
  remainingOpenMs(): number;
}

/**
 * The breakers of a worker, one per upstream, created on first use. A call with other settings than the breaker's
 * (the manifest was reloaded) rebuilds it, closed, with the new ones.
 */
export interface UpstreamBreakers {
  get(upstream: string, settings: BreakerSettings): UpstreamBreaker;
}

/**
 * Creates the breaker registry. Only failures worth retrying (5xx, 408, 429, timeouts, network errors) count: a
 * refusal (4xx) is an answer, so the upstream is up. An open breaker fails calls without sending them until
 * `halfOpenAfterMs` have passed; then one call probes the upstream and closes the breaker (success) or opens it again.
 * Each upstream's state is the `stellaops_runner_breaker_state` gauge of `metrics`, when given.
 */
export function createUpstreamBreakers(logger: Logger, metrics?: RunnerMetrics): UpstreamBreakers {
  const breakers = new Map<string, UpstreamBreaker>();
  return {
    get(upstream, settings) {
      const existing = breakers.get(upstream);
      if (existing && sameBreaker(existing.settings, settings)) return existing;
      if (existing) {
        logger.info({ upstream, ...settings }, `circuit breaker of ${upstream} rebuilt with the reloaded settings`);
      }
      // A replaced breaker's calls still in flight may trip it: only the breaker in use reports its state.
      const show = (state: BreakerStateName) => {
        if (breakers.get(upstream) === breaker) {
          metrics?.effects.breakerState.set({ upstream }, BREAKER_STATE_VALUES[state]);
        }
      };
      const policy = circuitBreaker(
        handleWhen((error) => error instanceof DeliveryError && error.retryable),
        { halfOpenAfter: settings.halfOpenAfterMs, breaker: new ConsecutiveBreaker(settings.threshold) },
      );
      // cockatiel keeps the opening time to itself: kept here too, so a fail-fast can say when to come back.
      let openedAt = 0;
      policy.onBreak(() => {
        openedAt = Date.now();
        show('open');
        logger.warn(
          { upstream, threshold: settings.threshold, halfOpenAfterMs: settings.halfOpenAfterMs },
          `circuit breaker of ${upstream} opened: calls fail fast for ${settings.halfOpenAfterMs} ms`,
        );
      });
      policy.onHalfOpen(() => {
        show('half_open');
        logger.info({ upstream }, `circuit breaker of ${upstream} half-open: probing`);
      });
      policy.onReset(() => {
        show('closed');
        logger.info({ upstream }, `circuit breaker of ${upstream} closed`);
      });
      const breaker: UpstreamBreaker = {
        upstream,
        settings,
        policy,
        remainingOpenMs: () => Math.max(1, settings.halfOpenAfterMs - (Date.now() - openedAt)),
      };
      breakers.set(upstream, breaker);
      show('closed');
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

/**
 * The metrics of one attempt of an effect (`gateway` for commands): `result` counts what came of it — the final
 * result's type, or `unavailable` for an attempt Temporal retries — and `duration` observes the upstream call (not
 * a call the open breaker fails fast).
 */
export function attemptMetrics(metrics: RunnerMetrics | undefined, effect: string) {
  return {
    result: (result: string) => metrics?.effects.results.inc({ effect, result }),
    duration: (startedAt: number) =>
      metrics?.effects.durationSeconds.observe({ effect }, (performance.now() - startedAt) / 1000),
  };
}

/** Dependencies of the effect and Gateway-command activities. */
export interface EffectActivityDeps {
  /** The effects manifest, read on every call (a reload replaces it). */
  manifest: EffectsManifestSource;
  logger: Logger;
  /** Base URL of the Gateway (`gatewayUrlOf(config)`). */
  gatewayUrl: string;
  /** Breakers shared with other activity sets of the process (a new registry by default). */
  breakers?: UpstreamBreakers;
  /** Publishes final results to the workflow stream; nothing is published without it (`NATS_EGRESS=false`). */
  egress?: WorkflowEventPublisher | undefined;
  metrics?: RunnerMetrics | undefined;
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
  const { logger, egress } = deps;
  const breakers = deps.breakers ?? createUpstreamBreakers(logger, deps.metrics);
  assertGatewayBreakerShared(deps.manifest.current(), parseDeliveryUrl(deps.gatewayUrl).href);

  const runEffect = async (command: EffectCommand): Promise<EffectResult> => {
    const ctx = Context.current();
    const { attempt } = ctx.info;
    const { tenantId, commandId, effectName } = command;
    const manifest = deps.manifest.current();
    const measure = attemptMetrics(deps.metrics, effectName);
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
    const { correlationId, traceparent } = command.metadata;
    // The final result reaches the workflow stream before the activity completes: a publish that is not acked
    // fails this attempt (retried, the provider call being idempotent by command id) instead of losing the result.
    const final = async (answer: EffectResult): Promise<EffectResult> => {
      await egress?.publishEffectResult(answer, { correlationId, traceparent });
      measure.result(answer.resultType);
      return answer;
    };
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
      return final(result('rejected', { status: null, message }));
    }
    const headers = {
      ...provider.headers,
      ...commandHeaders({ commandId, tenantId, correlationId, traceparent }),
    };
    const startedAt = performance.now();
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
    // A call the open breaker never sent says nothing about the upstream's answer times.
    if (answer.outcome !== 'open') measure.duration(startedAt);
    switch (answer.outcome) {
      case 'answered':
        return final(result('succeeded', payloadOf(answer.body)));
      case 'refused':
        return final(
          result('rejected', { status: answer.error.status ?? null, message: refusalMessage(answer.error) }),
        );
      case 'unavailable':
      case 'open': {
        const message = unavailableMessage(answer, what, provider.upstream);
        if (isLastAttempt(provider.retry, attempt)) {
          logger.warn({ ...logFields, retryable: false }, `${message}; giving up after ${attempt} attempts`);
          return final(
            result('failed', {
              ...(answer.outcome === 'unavailable' && { status: answer.error.status ?? null }),
              message,
              attempts: attempt,
            }),
          );
        }
        measure.result('unavailable');
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
      manifest: deps.manifest,
      breakers,
      logger,
      egress,
      metrics: deps.metrics,
    }),
  } satisfies SagaOutboundActivities;
}
