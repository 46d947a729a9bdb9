/**
 * The API's request log never carries credentials from URLs: approval-link tokens (`/approvals/{token}`) and
 * `token` query parameters are logged as `[redacted]`. Read from the log lines the API itself writes.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.js';
import { createTemporalFacade, type TemporalFacade } from '../../api/temporal/facade.js';
import { loadConfig } from '../../core/config.js';
import { generateSecret, generateWebhookSecret } from '../../core/local-secrets.js';
import { signApprovalLink } from '../../notify/approval-links.js';
import { createTestSigner, TEST_AUDIENCE, TEST_ISSUER } from '../support/auth.js';
import { memoryLogger, type MemoryLogger } from '../support/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

const secrets = { eventSecrets: [generateWebhookSecret()], linkSecret: generateSecret() };
let db: TestDatabase;
let temporal: TemporalFacade;
let app: FastifyInstance;
let log: MemoryLogger;

beforeAll(async () => {
  [db, log] = [await createTestDatabase(), memoryLogger()];
  // Nothing here reaches Temporal: the connection is lazy and never used.
  temporal = createTemporalFacade({ address: '127.0.0.1:1', namespace: 'default' });
  app = await buildApp({
    config: loadConfig({ AUTH_JWT_ISSUER: TEST_ISSUER, AUTH_JWT_AUDIENCE: TEST_AUDIENCE }),
    logger: log.logger,
    pool: db.pool,
    temporal,
    verifyToken: (await createTestSigner()).verifier,
    packApprovalSecrets: secrets,
  });
});
afterAll(async () => {
  await app?.close();
  await temporal?.close();
  await db?.drop();
});

/** The `req.url` of every request log line of `requestId`. */
function loggedUrls(requestId: string): string[] {
  return log.records
    .filter((record) => record.reqId === requestId && record.req !== undefined)
    .map((record) => (record.req as { url: string }).url);
}

describe('the request log', () => {
  it('logs an approval link as /approvals/[redacted], never its token', async () => {
    const token = await signApprovalLink(
      secrets.linkSecret,
      { tenantId: 'acme', runId: 'run-log', approvalId: 'deploy-prod', recipient: 'approver@acme.test', grants: [] },
      new Date(Date.now() + 3_600_000),
    );
    for (const [method, path] of [
      ['GET', `/approvals/${token}`],
      ['GET', `/approvals/${token}?lang=de`],
      ['POST', `/approvals/${token}`],
    ] as const) {
      const requestId = `redaction-${method}-${path.length}`;
      const res = await app.inject({
        method,
        url: path,
        headers: {
          'x-request-id': requestId,
          ...(method === 'POST' && { 'content-type': 'application/x-www-form-urlencoded' }),
        },
        ...(method === 'POST' && { payload: 'decision=maybe' }),
      });
      // Unknown approval (and, posted, an invalid form): answered from Postgres alone; what matters is the log.
      expect(res.statusCode, path).toBeGreaterThanOrEqual(400);
      const urls = loggedUrls(requestId);
      expect(urls.length, `${method} ${path} was not logged`).toBeGreaterThan(0);
      expect(new Set(urls)).toEqual(
        new Set([path.includes('?') ? '/approvals/[redacted]?lang=de' : '/approvals/[redacted]']),
      );
    }
    expect(log.lines.join('\n')).not.toContain(token);
    // Not even a part of it (the signature, or the claims' segment).
    for (const part of token.split('.')) expect(log.lines.join('\n')).not.toContain(part);
  });

  it('redacts token query parameters of any URL and keeps the rest', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/health?token=s3cr3t&verbose=1&access_token=s3cr3t-2&resumeToken=s3cr3t-3',
      headers: { 'x-request-id': 'redaction-query' },
    });
    expect(res.statusCode).toBe(200);
    expect(loggedUrls('redaction-query')).toContain(
      '/health?token=[redacted]&verbose=1&access_token=[redacted]&resumeToken=[redacted]',
    );
    expect(log.lines.join('\n')).not.toContain('s3cr3t');
  });
});
