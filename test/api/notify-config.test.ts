/** Notification configuration routes (routing rules and templates of pack approvals) against real Postgres. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope } from '../../core/scopes.js';
import { listAudit } from '../../db/queries/audit.js';
import { listRules, listTemplates } from '../../db/queries/notify-config.js';
import { startApiHarness, type ApiHarness } from '../support/api.js';

let h: ApiHarness;
let admin: string;
let otherTenantAdmin: string;
let approver: string;

beforeAll(async () => {
  h = await startApiHarness({ workers: false });
  [admin, otherTenantAdmin, approver] = await Promise.all([
    h.signer.token({ tenant: 'acme', scopes: [Scope.NotifierAdmin], subject: 'alice' }),
    h.signer.token({ tenant: 'globex', scopes: [Scope.NotifierAdmin], subject: 'bob' }),
    h.signer.token({ tenant: 'acme', scopes: [Scope.PacksApprove], subject: 'carol' }),
  ]);
});
afterAll(async () => {
  await h?.close();
});

const call = (method: 'GET' | 'PUT' | 'DELETE', url: string, payload?: object, token: string = admin) =>
  h.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });

interface FieldErrors {
  error: string;
  errors: { path: string; message: string }[];
}
/** The distinct paths of the field errors (a missing field may carry several messages). */
const paths = (body: FieldErrors) => [...new Set(body.errors.map((e) => e.path))];

const rule = {
  name: 'Production deploys',
  predicate: 'event.kind == "pack.approval" && event.requiredGrants.exists(g, g.startsWith("deploy:"))',
  channels: [
    { channel: 'email', recipients: ['ops@example.com'] },
    { channel: 'webhook', recipients: ['https://hooks.example.com/services/T000/B000/secret-path?token=abc'] },
  ],
};

describe('routing rules', () => {
  it('creates (201, defaults applied), reads, replaces (200), lists and deletes a rule, auditing each change', async () => {
    const created = await call('PUT', '/notifications/rules/prod-deploys', rule);
    expect(created.statusCode).toBe(201);
    expect(created.headers.location).toBe('/notifications/rules/prod-deploys');
    const expected = { ruleId: 'prod-deploys', tenantId: 'acme', ...rule, enabled: true, priority: 100 };
    expect(created.json()).toEqual(expected);
    expect((await call('GET', '/notifications/rules/prod-deploys')).json()).toEqual(expected);

    const replaced = await call('PUT', '/notifications/rules/prod-deploys', {
      ...rule,
      name: 'Production deploys (paused)',
      templateId: 'custom.requested',
      enabled: false,
      priority: 5,
    });
    expect(replaced.statusCode).toBe(200);
    expect(replaced.json()).toMatchObject({ name: 'Production deploys (paused)', enabled: false, priority: 5 });

    await call('PUT', '/notifications/rules/all-gates', {
      name: 'Policy gates',
      predicate: 'event.hasPolicyGate',
      channels: [{ channel: 'email', recipients: ['security@example.com'] }],
      priority: 50,
    });
    const list = await call('GET', '/notifications/rules');
    expect(list.statusCode).toBe(200);
    expect(list.json<{ items: { ruleId: string }[] }>().items.map((r) => r.ruleId)).toEqual([
      'prod-deploys',
      'all-gates',
    ]);
    expect(list.json<{ items: { templateId?: string }[] }>().items[0]?.templateId).toBe('custom.requested');

    expect((await call('DELETE', '/notifications/rules/prod-deploys')).statusCode).toBe(204);
    expect((await call('GET', '/notifications/rules/prod-deploys')).statusCode).toBe(404);
    expect((await call('DELETE', '/notifications/rules/prod-deploys')).statusCode).toBe(404);
    expect((await listRules(h.db.pool, 'acme')).map((r) => r.ruleId)).toEqual(['all-gates']);

    const audit = await listAudit(h.db.pool, 'acme', { eventTypePrefix: 'notify.rule.' });
    expect(
      audit
        .filter((a) => a.subject === 'prod-deploys')
        .map((a) => `${a.eventType}:${a.actor}`)
        .reverse(),
    ).toEqual(['notify.rule.created:alice', 'notify.rule.updated:alice', 'notify.rule.deleted:alice']);
    const createdAudit = audit.find((a) => a.eventType === 'notify.rule.created' && a.subject === 'prod-deploys');
    expect(createdAudit?.details).toMatchObject({ name: 'Production deploys', priority: 100, enabled: true });
    // Webhook URLs often carry tokens: the audit keeps only their origin.
    expect(JSON.stringify(createdAudit?.details)).not.toContain('secret-path');
    expect(JSON.stringify(createdAudit?.details)).toContain('https://hooks.example.com');
  });

  it.each([
    ['a predicate that does not parse', { ...rule, predicate: 'event.kind ==' }, ['body.predicate']],
    ['a predicate that is not a bool', { ...rule, predicate: '1 + 1' }, ['body.predicate']],
    ['an unknown variable', { ...rule, predicate: 'process.exit()' }, ['body.predicate']],
    [
      'a bad email recipient',
      { ...rule, channels: [{ channel: 'email', recipients: ['ops@example.com', 'not an address'] }] },
      ['body.channels.0.recipients.1'],
    ],
    [
      'a non-https external webhook',
      {
        ...rule,
        channels: [
          { channel: 'email', recipients: ['ops@example.com'] },
          { channel: 'webhook', recipients: ['http://hooks.example.com/x'] },
        ],
      },
      ['body.channels.1.recipients.0'],
    ],
    ['a missing name (schema)', { predicate: 'true', channels: rule.channels }, ['body.name']],
    ['an unknown property (schema)', { ...rule, owner: 'x' }, ['body.owner']],
  ])('rejects %s with 400 field errors and stores nothing', async (_label, body, expected) => {
    const res = await call('PUT', '/notifications/rules/invalid-rule', body);
    expect(res.statusCode).toBe(400);
    const doc = res.json<FieldErrors>();
    expect(doc.error).toBe('ValidationFailed');
    expect(paths(doc)).toEqual(expected);
    expect((await call('GET', '/notifications/rules/invalid-rule')).statusCode).toBe(404);
  });

  it('explains why a predicate is rejected', async () => {
    const res = await call('PUT', '/notifications/rules/invalid-rule', { ...rule, predicate: '1 + 1' });
    expect(res.json<FieldErrors>().errors[0]?.message).toMatch(/bool/);
    const webhook = await call('PUT', '/notifications/rules/invalid-rule', {
      ...rule,
      channels: [{ channel: 'webhook', recipients: ['http://hooks.example.com/x'] }],
    });
    expect(webhook.json<FieldErrors>().errors[0]?.message).toMatch(/^webhook recipient /);
    const audit = await listAudit(h.db.pool, 'acme', { eventTypePrefix: 'notify.' });
    expect(audit.filter((a) => a.subject === 'invalid-rule')).toEqual([]);
  });

  it('rejects a malformed rule id', async () => {
    const res = await call('PUT', '/notifications/rules/Bad%20Id', rule);
    expect(res.statusCode).toBe(400);
    expect(paths(res.json<FieldErrors>())).toEqual(['params.ruleId']);
  });

  it('keeps tenants apart', async () => {
    expect((await call('PUT', '/notifications/rules/acme-only', rule)).statusCode).toBe(201);
    const list = await call('GET', '/notifications/rules', undefined, otherTenantAdmin);
    expect(list.json()).toEqual({ items: [] });
    expect((await call('GET', '/notifications/rules/acme-only', undefined, otherTenantAdmin)).statusCode).toBe(404);
    expect((await call('DELETE', '/notifications/rules/acme-only', undefined, otherTenantAdmin)).statusCode).toBe(404);

    // The same id in another tenant is another rule.
    const theirs = await call('PUT', '/notifications/rules/acme-only', { ...rule, name: 'Globex' }, otherTenantAdmin);
    expect(theirs.statusCode).toBe(201);
    expect(theirs.json()).toMatchObject({ tenantId: 'globex', name: 'Globex' });
    expect((await call('GET', '/notifications/rules/acme-only')).json()).toMatchObject({
      tenantId: 'acme',
      name: rule.name,
    });
    expect(
      (await listAudit(h.db.pool, 'globex', { eventTypePrefix: 'notify.' })).map((a) => `${a.eventType}:${a.actor}`),
    ).toEqual(['notify.rule.created:bob']);
  });

  it('requires a token with Notifier.Admin', async () => {
    expect((await call('GET', '/notifications/rules', undefined, approver)).statusCode).toBe(403);
    const put = await call('PUT', '/notifications/rules/sneaky', rule, approver);
    expect(put.statusCode).toBe(403);
    expect((await call('DELETE', '/notifications/rules/acme-only', undefined, approver)).statusCode).toBe(403);
    expect((await call('GET', '/notifications/templates', undefined, approver)).statusCode).toBe(403);
    const anonymous = await h.app.inject({ method: 'PUT', url: '/notifications/rules/sneaky', payload: {} });
    expect(anonymous.statusCode).toBe(401);
    expect((await call('GET', '/notifications/rules/sneaky')).statusCode).toBe(404);
  });
});

describe('templates', () => {
  const email = {
    subject: 'Approval needed: {{runId}}',
    text: 'Plan {{planHash}} needs {{requiredGrants}}. {{approvalLink}}',
    html: '<p>Plan <code>{{planHash}}</code></p><a href="{{approvalLink}}">Review</a>',
  };
  const webhook = { body: '{"text": "Approval {{approvalId}} for run {{runId}}", "kind": "{{kind}}"}' };

  it('upserts (201, then 200), lists with the built-in defaults, and deletes templates, auditing each change', async () => {
    const url = '/notifications/templates/custom.requested/email/de-CH';
    const created = await call('PUT', url, email);
    expect(created.statusCode).toBe(201);
    expect(created.headers.location).toBe(url);
    expect(created.json()).toEqual({ templateId: 'custom.requested', channel: 'email', locale: 'de-CH', ...email });
    const replaced = await call('PUT', url, { ...email, html: undefined, subject: 'Freigabe: {{runId}}' });
    expect(replaced.statusCode).toBe(200);
    expect(replaced.json()).not.toHaveProperty('html');

    expect((await call('PUT', '/notifications/templates/custom.requested/webhook/en-US', webhook)).statusCode).toBe(
      201,
    );
    const list = await call('GET', '/notifications/templates');
    expect(list.statusCode).toBe(200);
    const { items, builtIn } = list.json<{
      items: { templateId: string; channel: string; locale: string; subject?: string; html?: string }[];
      builtIn: { templateId: string; channel: string; locale: string }[];
    }>();
    expect(items.map((t) => `${t.templateId}/${t.channel}/${t.locale}`)).toEqual([
      'custom.requested/email/de-CH',
      'custom.requested/webhook/en-US',
    ]);
    expect(items[0]).toMatchObject({ subject: 'Freigabe: {{runId}}' });
    expect(items[0]).not.toHaveProperty('html');
    expect(builtIn).toContainEqual(
      expect.objectContaining({ templateId: 'pack-approval.requested', channel: 'email', locale: 'en-US' }),
    );
    expect(builtIn).toContainEqual(
      expect.objectContaining({ templateId: 'pack-policy.hold', channel: 'webhook', locale: 'de-DE' }),
    );

    // Another tenant sees none of them.
    const theirs = await call('GET', '/notifications/templates', undefined, otherTenantAdmin);
    expect(theirs.json<{ items: unknown[] }>().items).toEqual([]);
    expect((await call('DELETE', url, undefined, otherTenantAdmin)).statusCode).toBe(404);

    expect((await call('DELETE', url)).statusCode).toBe(204);
    expect((await call('DELETE', url)).statusCode).toBe(404);
    expect((await listTemplates(h.db.pool, 'acme')).map((t) => t.channel)).toEqual(['webhook']);

    const audit = await listAudit(h.db.pool, 'acme', { eventTypePrefix: 'notify.template.' });
    expect(audit.map((a) => `${a.eventType}:${a.actor}:${a.subject}`).reverse()).toEqual([
      'notify.template.upserted:alice:custom.requested/email/de-CH',
      'notify.template.upserted:alice:custom.requested/email/de-CH',
      'notify.template.upserted:alice:custom.requested/webhook/en-US',
      'notify.template.deleted:alice:custom.requested/email/de-CH',
    ]);
    expect(audit.at(-1)?.details).toMatchObject({ created: true });
    expect(audit.at(-2)?.details).toMatchObject({ created: false });
  });

  it.each([
    ['a webhook body that is not JSON', 'webhook', { body: 'not json {{runId}}' }, ['body.body']],
    ['a webhook body with an unescaped tag', 'webhook', { body: '{"a": "{{{runId}}}"}' }, ['body.body']],
    ['an unescaped tag in html', 'email', { ...email, html: '<p>{{{planHash}}}</p>' }, ['body.html']],
    ['a tag naming a prototype member', 'email', { ...email, text: '{{constructor}}' }, ['body.text']],
    ['an email template without text', 'email', { subject: 'Hi' }, ['body.text']],
    ['email fields on a webhook template', 'webhook', { ...webhook, subject: 'Hi' }, ['body.subject']],
    ['an unknown property', 'webhook', { ...webhook, extra: 'x' }, ['body.extra']],
  ])('rejects %s with 400 field errors and stores nothing', async (_label, channel, body, expected) => {
    const res = await call('PUT', `/notifications/templates/broken/${channel}/en-US`, body);
    expect(res.statusCode).toBe(400);
    const doc = res.json<FieldErrors>();
    expect(doc.error).toBe('ValidationFailed');
    expect(paths(doc)).toEqual(expected);
    expect((await listTemplates(h.db.pool, 'acme')).filter((t) => t.templateId === 'broken')).toEqual([]);
  });

  it('rejects an unknown channel or a malformed locale in the path', async () => {
    const sms = await call('PUT', '/notifications/templates/custom.requested/sms/en-US', webhook);
    expect(sms.statusCode).toBe(400);
    expect(paths(sms.json<FieldErrors>())).toContain('params.channel');
    const locale = await call('PUT', '/notifications/templates/custom.requested/webhook/english', webhook);
    expect(locale.statusCode).toBe(400);
    expect(paths(locale.json<FieldErrors>())).toEqual(['params.locale']);
  });
});

describe('OpenAPI', () => {
  it('documents the routes with their status codes', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>;
    }>();
    expect(Object.keys(doc.paths['/notifications/rules/{ruleId}']?.put?.responses ?? {})).toEqual(
      expect.arrayContaining(['200', '201', '400', '401', '403']),
    );
    expect(Object.keys(doc.paths['/notifications/templates/{templateId}/{channel}/{locale}'] ?? {}).sort()).toEqual([
      'delete',
      'put',
    ]);
  });
});
