import { describe, expect, it } from 'vitest';
import { DEFAULT_TEMPLATE_IDS, DEFAULT_TEMPLATES, defaultTemplateIdFor } from '../../notify/default-templates.js';
import {
  buildTemplateModel,
  localeChain,
  redactSecrets,
  renderEmail,
  renderWebhook,
  resolveTemplate,
  TemplateError,
  validateTemplate,
  type NotifyTemplate,
} from '../../notify/templates.js';
import { packApprovalEvent as event, RESUME_TOKEN } from '../support/fixtures.js';

const link = 'https://console.example/approvals/appr-1';

function template(locale: string, overrides: Partial<NotifyTemplate> = {}): NotifyTemplate {
  return { templateId: 't', locale, channel: 'email', subject: locale, text: locale, ...overrides };
}

describe('localeChain', () => {
  it('goes requested → language → tenant default → its language → en-US → en', () => {
    expect(localeChain('de-CH', 'fr-FR')).toEqual(['de-CH', 'de', 'fr-FR', 'fr', 'en-US', 'en']);
  });
  it('deduplicates, normalises case/underscores and skips malformed locales', () => {
    expect(localeChain('en_us', 'en-US')).toEqual(['en-US', 'en']);
    expect(localeChain('de', undefined)).toEqual(['de', 'en-US', 'en']);
    expect(localeChain('not a locale', 'de-AT')).toEqual(['de-AT', 'de', 'en-US', 'en']);
    expect(localeChain(undefined, undefined)).toEqual(['en-US', 'en']);
  });
});

describe('resolveTemplate', () => {
  const templates = [
    template('en-US'),
    template('de-DE'),
    template('de-AT'),
    template('fr-CA'),
    template('de-CH', { channel: 'webhook', body: '{}' }),
    template('it-IT', { templateId: 'other' }),
  ];
  const pick = (requested: string | undefined, tenant: string | undefined) =>
    resolveTemplate(templates, 't', 'email', requested, tenant)?.locale;

  it('prefers the exact locale', () => {
    expect(pick('de-AT', 'fr-CA')).toBe('de-AT');
  });
  it('falls back to a same-language template (own region first) before the tenant default', () => {
    // de-CH exists only for webhook: for email, the `de` step picks de-DE (the language's own region) over de-AT.
    expect(pick('de-CH', 'fr-CA')).toBe('de-DE');
  });
  it('uses the tenant default, with its language, when the requested language has nothing', () => {
    expect(pick('es-ES', 'fr-CA')).toBe('fr-CA');
    expect(pick('es-ES', 'fr-FR')).toBe('fr-CA');
  });
  it('ends at en-US and returns undefined when nothing exists', () => {
    expect(pick('it-IT', undefined)).toBe('en-US');
    expect(resolveTemplate(templates, 'missing', 'email', 'de-DE', 'en-US')).toBeUndefined();
    expect(resolveTemplate([template('ja-JP')], 't', 'email', 'de-DE', undefined)).toBeUndefined();
  });
  it('takes the alphabetically first region when the own region is missing', () => {
    expect(resolveTemplate([template('de-CH'), template('de-AT')], 't', 'email', 'de', undefined)?.locale).toBe(
      'de-AT',
    );
  });
});

describe('buildTemplateModel', () => {
  it('never contains the resume token, callback URL or traceparent', () => {
    const model = buildTemplateModel(event(), {
      reason: 'decided',
      approvalLink: link,
      decision: Object.assign(
        { decision: 'approve' as const, decidedBy: 'bob', decidedAt: '2025-01-01T01:00:00.000Z' },
        { resumeToken: 'run-1.appr-1.approve.signature' },
      ),
    });
    const json = JSON.stringify(model);
    expect(json).not.toContain(RESUME_TOKEN);
    expect(json).not.toContain('runner.example');
    expect(json).not.toContain('0af7651916cd43dd');
    expect(json).not.toContain('signature');
    expect(model.decision).toEqual({
      decision: 'approve',
      approved: true,
      rejected: false,
      decidedBy: 'bob',
      decidedAt: '2025-01-01T01:00:00.000Z',
    });
    expect(model.requiredGrants).toBe('deploy:prod, packs:approve');
    expect(model.requiredGrantsList.map((i) => [i.value, i.last])).toEqual([
      ['deploy:prod', false],
      ['packs:approve', true],
    ]);
  });

  it('a template naming the token, the callback or prototype members cannot render them', () => {
    const model = buildTemplateModel(event(), { reason: 'requested', approvalLink: link });
    const t = template('en-US', { subject: 's', text: '[{{resumeCallback.token}}][{{token}}]' });
    expect(renderEmail(t, model).text).toBe('[][]');
    for (const tag of ['{{constructor}}', '{{requiredGrantsList.constructor.constructor}}', '{{runId.length}}']) {
      expect(() => renderEmail(template('en-US', { text: tag }), model)).toThrow(TemplateError);
    }
    expect(() => renderEmail(template('en-US', { text: '{{>partial}}' }), model)).toThrow(/partials/);
  });
});

describe('renderEmail', () => {
  const hostile = event({
    requestedBy: '<script>alert("x")</script> & Co',
    message: { templateId: 'm', parameters: { note: 'a "quoted" <b>note</b>' } },
  });
  const model = buildTemplateModel(hostile, { reason: 'requested', approvalLink: link });

  it('escapes HTML in html but not in subject/text', () => {
    const rendered = renderEmail(
      template('en-US', {
        subject: 'From {{requestedBy}}\nBcc: evil@example.com',
        text: 'By {{requestedBy}}: {{parameters.note}}',
        html: '<p>By {{requestedBy}}: {{parameters.note}}</p>',
      }),
      model,
    );
    expect(rendered.subject).toBe('From <script>alert("x")</script> & Co Bcc: evil@example.com');
    expect(rendered.text).toBe('By <script>alert("x")</script> & Co: a "quoted" <b>note</b>');
    expect(rendered.html).toBe(
      '<p>By &lt;script&gt;alert(&quot;x&quot;)&lt;&#x2F;script&gt; &amp; Co: a &quot;quoted&quot; &lt;b&gt;note&lt;&#x2F;b&gt;</p>',
    );
  });

  it('refuses unescaped tags in html', () => {
    expect(() => renderEmail(template('en-US', { html: '{{{requestedBy}}}' }), model)).toThrow(/unescaped/);
    expect(() => renderEmail(template('en-US', { html: '{{&requestedBy}}' }), model)).toThrow(/unescaped/);
  });

  it('throws TemplateError for malformed templates and non-email templates', () => {
    expect(() => renderEmail(template('en-US', { text: '{{#open}}never closed' }), model)).toThrow(TemplateError);
    expect(() => renderEmail({ templateId: 't', locale: 'en-US', channel: 'webhook', body: '{}' }, model)).toThrow(
      /not an email template/,
    );
  });
});

describe('renderWebhook', () => {
  it('keeps values with quotes, backslashes and newlines inside their JSON strings', () => {
    const model = buildTemplateModel(
      event({
        requestedBy: 'mallory", "admin": true, "x": "',
        stepIds: ['line1\nline2', 'back\\slash', 'tab\there'],
      }),
      { reason: 'requested', approvalLink: link },
    );
    const body = renderWebhook(
      {
        templateId: 't',
        locale: 'en-US',
        channel: 'webhook',
        body: '{"by": "{{requestedBy}}", "steps": [{{#stepIdsList}}"{{value}}"{{^last}},{{/last}}{{/stepIdsList}}], "n": {{stepCount}}}',
      },
      model,
    );
    expect(body).toEqual({
      by: 'mallory", "admin": true, "x": "',
      steps: ['line1\nline2', 'back\\slash', 'tab\there'],
      n: 3,
    });
    expect(body).not.toHaveProperty('admin');
  });

  it('throws TemplateError on invalid JSON and non-object results', () => {
    const model = buildTemplateModel(event(), { reason: 'requested', approvalLink: link });
    const webhook = (body: string): NotifyTemplate => ({ templateId: 't', locale: 'en-US', channel: 'webhook', body });
    expect(() => renderWebhook(webhook('{"by": {{requestedBy}}}'), model)).toThrow(TemplateError);
    expect(() => renderWebhook(webhook('["{{runId}}"]'), model)).toThrow(/JSON object/);
    expect(() => renderWebhook(webhook('{"x": "{{{runId}}}"}'), model)).toThrow(/unescaped/);
  });
});

describe('validateTemplate', () => {
  it('accepts valid email and webhook templates', () => {
    expect(
      validateTemplate({ templateId: 'my.tpl', locale: 'de', channel: 'email', subject: 'S {{runId}}', text: 'T' }),
    ).toEqual([]);
    expect(
      validateTemplate({ templateId: 'my.tpl', locale: 'de-CH', channel: 'webhook', body: '{"run": "{{runId}}"}' }),
    ).toEqual([]);
  });

  it('reports schema problems, missing fields and bodies that are not JSON', () => {
    expect(validateTemplate({ templateId: 'x', locale: 'de', channel: 'sms' })).toEqual([
      { path: '/channel', message: expect.any(String) as string },
    ]);
    const emailErrors = validateTemplate({ templateId: 'Bad', locale: 'de_DE', channel: 'email', subject: 'S' });
    expect(emailErrors.map((e) => e.path)).toEqual(expect.arrayContaining(['/templateId', '/locale', '/text']));
    // Valid with the sample model but not with an empty one: a number position left blank.
    expect(
      validateTemplate({
        templateId: 'x',
        locale: 'en',
        channel: 'webhook',
        body: '{"n": {{requiredGrantCount}}{{expiresAt}}}',
      })[0]?.path,
    ).toBe('/body');
    expect(
      validateTemplate({ templateId: 'x', locale: 'en', channel: 'webhook', body: '{"a": {{runId}}}' }),
    ).toHaveLength(1);
    expect(
      validateTemplate({ templateId: 'x', locale: 'en', channel: 'email', subject: 's', text: '{{#a}}' })[0]?.path,
    ).toBe('/text');
  });
});

describe('redactSecrets', () => {
  const secret = 'S3cr3t/Value+With=Chars';

  it('removes the secret everywhere, including nested arrays, keys and URL query strings', () => {
    const input = {
      url: `https://hooks.example.com/x?token=${encodeURIComponent(secret)}&raw=${secret}`,
      nested: { list: [['prefix-' + secret], { deep: [secret, 42, true, null] }] },
      [`key-${secret}`]: 'v',
      Authorization: 'Bearer abc',
      headers: { 'X-Api': 'ok', TOKEN: 'x', Secret: 'y', password: 'z', resumeToken: 'w' },
      short: 'abc',
    };
    const output = redactSecrets(input, [secret, 'abc']);
    const json = JSON.stringify(output);
    expect(json).not.toContain(secret);
    expect(json).not.toContain(encodeURIComponent(secret));
    expect(output).toEqual({
      url: 'https://hooks.example.com/x?token=[redacted]&raw=[redacted]',
      nested: { list: [['prefix-[redacted]'], { deep: ['[redacted]', 42, true, null] }] },
      'key-[redacted]': 'v',
      headers: { 'X-Api': 'ok' },
      short: 'abc',
    });
    // A deep copy: the input is untouched.
    expect(input.nested.list[0]).toEqual(['prefix-' + secret]);
    expect(input.headers.TOKEN).toBe('x');
  });

  it('ignores secrets shorter than 8 characters and handles primitives', () => {
    expect(redactSecrets('abcdefg and more', ['abcdefg'])).toBe('abcdefg and more');
    expect(redactSecrets('value abcdefgh', ['abcdefgh'])).toBe('value [redacted]');
    expect(redactSecrets(7, [secret])).toBe(7);
  });
});

describe('default templates', () => {
  const ids = Object.values(DEFAULT_TEMPLATE_IDS);

  it('cover every template id for both channels in en-US and de-DE', () => {
    expect(DEFAULT_TEMPLATES).toHaveLength(ids.length * 4);
    for (const id of ids) {
      for (const channel of ['email', 'webhook'] as const) {
        for (const locale of ['en-US', 'de-DE']) {
          expect(resolveTemplate(DEFAULT_TEMPLATES, id, channel, locale, undefined)?.locale).toBe(locale);
        }
      }
    }
    expect(defaultTemplateIdFor('hold')).toBe('pack-policy.hold');
    expect(defaultTemplateIdFor('requested')).toBe('pack-approval.requested');
  });

  it('all pass validateTemplate', () => {
    for (const t of DEFAULT_TEMPLATES)
      expect([t.templateId, t.locale, validateTemplate(t)]).toEqual([t.templateId, t.locale, []]);
  });

  it('approval emails carry plan hash, steps, grants, expiry and link', () => {
    const model = buildTemplateModel(event(), { reason: 'requested', approvalLink: link });
    for (const locale of ['en-US', 'de-DE']) {
      const t = resolveTemplate(DEFAULT_TEMPLATES, 'pack-approval.requested', 'email', locale, undefined);
      if (!t) throw new Error('missing template');
      const email = renderEmail(t, model);
      for (const part of [email.text, email.html ?? '']) {
        expect(part).toContain('sha256:feedbeef');
        expect(part).toContain('build, deploy');
        expect(part).toContain('deploy:prod, packs:approve');
        expect(part).toContain('2025-01-02T00:00:00.000Z');
      }
      expect(email.text).toContain(link);
      expect(email.html).toContain('https:&#x2F;&#x2F;console.example');
      expect(email.subject).toContain('run-1');
    }
  });

  it('policy emails carry gate id, parameters and messages; webhooks are structured JSON', () => {
    const gate = event({
      kind: 'pack.policy.gate',
      type: 'PackApprovalUpdated',
      status: 'held',
      policyGate: {
        gateId: 'sec-7',
        parameters: { level: 'high', team: 'sec' },
        messages: ['CVE found', 'Needs review'],
      },
    });
    const model = buildTemplateModel(gate, { reason: 'hold', approvalLink: link });
    const email = renderEmail(
      resolveTemplate(DEFAULT_TEMPLATES, 'pack-policy.hold', 'email', 'de-DE', undefined) ?? template('x'),
      model,
    );
    expect(email.subject).toContain('sec-7');
    expect(email.text).toContain('level=high, team=sec');
    expect(email.text).toContain('- CVE found\n- Needs review');
    const hook = renderWebhook(
      resolveTemplate(DEFAULT_TEMPLATES, 'pack-policy.hold', 'webhook', 'en-US', undefined) ?? template('x'),
      model,
    );
    expect(hook).toMatchObject({
      type: 'pack-policy.hold',
      runId: 'run-1',
      stepIds: ['build', 'deploy'],
      policyGate: {
        gateId: 'sec-7',
        parameters: { level: 'high', team: 'sec' },
        messages: ['CVE found', 'Needs review'],
      },
      decision: null,
      expiresAt: '2025-01-02T00:00:00.000Z',
    });
    expect(JSON.stringify(hook)).not.toContain(RESUME_TOKEN);
  });

  it('decided templates show the decision and comment', () => {
    const model = buildTemplateModel(event({ expiresAt: undefined }), {
      reason: 'decided',
      approvalLink: link,
      decision: { decision: 'reject', decidedBy: 'bob', decidedAt: '2025-01-01T02:00:00.000Z', comment: 'not now' },
    });
    const email = renderEmail(
      resolveTemplate(DEFAULT_TEMPLATES, 'pack-approval.decided', 'email', 'en-US', undefined) ?? template('x'),
      model,
    );
    expect(email.text).toContain('Decision: rejected by bob at 2025-01-01T02:00:00.000Z');
    expect(email.text).toContain('Comment: not now');
    expect(email.text).toContain('Expires: no expiry');
    expect(email.text).toContain('View the approval: https://console.example/approvals/appr-1');
    const statusOnly = renderEmail(
      resolveTemplate(DEFAULT_TEMPLATES, 'pack-approval.decided', 'email', 'de-DE', undefined) ?? template('x'),
      buildTemplateModel(event({ type: 'PackApprovalUpdated', status: 'cancelled', reason: 'plan superseded' }), {
        reason: 'decided',
        approvalLink: link,
      }),
    );
    expect(statusOnly.text).toContain('Status: cancelled');
    expect(statusOnly.text).toContain('Begründung: plan superseded');
    expect(statusOnly.text).not.toContain('Entscheidung:');
    const hook = renderWebhook(
      resolveTemplate(DEFAULT_TEMPLATES, 'pack-approval.decided', 'webhook', 'de-DE', undefined) ?? template('x'),
      model,
    );
    expect(hook).toMatchObject({
      locale: 'de-DE',
      decision: { decision: 'reject', decidedBy: 'bob', comment: 'not now' },
      expiresAt: null,
      policyGate: null,
    });
  });
});
