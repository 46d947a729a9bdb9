/**
 * Ingestion without workers, behind an IP allowlist and a tight rate limit, and with Temporal unreachable:
 * accepting never waits for a worker; refusals are 403 / 429 / 503 and change nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret, generateWebhookSecret } from '../../core/local-secrets.js';
import { Scope } from '../../core/scopes.js';
import { isIngestedEvent } from '../../db/queries/pack-approvals.js';
import { startApiHarness, startAppWithoutTemporal, type ApiHarness } from '../support/api.js';
import { sampleEvent, signedHeaders } from '../support/pack-approvals.js';

const secrets = { eventSecrets: [generateWebhookSecret()], linkSecret: generateSecret() };
let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness({
    workers: false,
    packApprovalSecrets: secrets,
    env: { PACK_EVENTS_IP_ALLOWLIST: '10.0.0.0/8,127.0.0.1/32', PACK_EVENTS_RATE_LIMIT_PER_MINUTE: '3' },
  });
});
afterAll(async () => {
  await h?.close();
});

async function post(app: ApiHarness['app'], tenant: string, remoteAddress = '127.0.0.1') {
  const event = sampleEvent({ tenantId: tenant });
  const body = JSON.stringify(event);
  const token = await h.signer.token({ tenant, scopes: [Scope.NotifierEventsWrite] });
  const res = await app.inject({
    method: 'POST',
    url: '/notifications/pack-approvals',
    remoteAddress,
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${token}`,
      ...signedHeaders(secrets.eventSecrets[0]!, body),
    },
    payload: body,
  });
  return { res, event };
}

describe('ingestion limits', () => {
  it('accepts with no worker running: the workflow waits in Temporal with the event', async () => {
    const { res, event } = await post(h.app, 'acme');
    expect(res.statusCode).toBe(202);
    const description = await h.env.client.workflow
      .getHandle(`pack-approval/acme/${event.runId}/deploy-prod`)
      .describe();
    expect(description.status.name).toBe('RUNNING');
  });

  it('refuses addresses outside the allowlist with 403', async () => {
    expect((await post(h.app, 'acme', '192.168.1.20')).res.statusCode).toBe(403);
    expect((await post(h.app, 'acme', '10.1.2.3')).res.statusCode).toBe(202);
  });

  it('rate-limits per tenant with 429 and Retry-After, other tenants unaffected', async () => {
    const codes: number[] = [];
    const windowStart = Date.now();
    for (let i = 0; i < 4; i++) codes.push((await post(h.app, 'busy-tenant')).res.statusCode);
    expect(codes).toEqual([202, 202, 202, 429]);
    const limited = await post(h.app, 'busy-tenant');
    expect(limited.res.statusCode).toBe(429);
    // Whole seconds until the tenant's one-minute window (opened by its first request) ends.
    const retryAfter = String(limited.res.headers['retry-after']);
    expect(retryAfter).toMatch(/^[1-9]\d*$/);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(60 - Math.ceil((Date.now() - windowStart) / 1000) - 1);
    expect(await isIngestedEvent(h.db.pool, 'busy-tenant', limited.event.eventId)).toBe(false);
    expect((await post(h.app, 'quiet-tenant')).res.statusCode).toBe(202);
  });

  it('answers 503 with Retry-After when Temporal is unreachable, and records nothing', async () => {
    const { app, close } = await startAppWithoutTemporal(h, { packApprovalSecrets: secrets });
    try {
      const { res, event } = await post(app, 'acme');
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      expect(await isIngestedEvent(h.db.pool, 'acme', event.eventId)).toBe(false);
    } finally {
      await close();
    }
  });
});
