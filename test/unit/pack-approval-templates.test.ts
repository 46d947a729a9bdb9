import { describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { DEFAULT_TEMPLATE_IDS, DEFAULT_TEMPLATES, defaultTemplateIdFor } from '../../notify/default-templates.js';
import {
  buildTemplateModel,
  localeChain,
  redactSecrets,
  renderEmail,
  renderWebhook,
  resolveTemplate,
  TemplateError,
  TemplateInput,
  validateTemplate,
  type NotifyTemplate,
} from '../../notify/templates.js';
import { packApprovalEvent as event, RESUME_TOKEN } from '../support/fixtures.js';

const link = 'https://console.example/approvals/appr-1';

function template(locale: string, overrides: Partial<NotifyTemplate> = {}): NotifyTemplate {
  return { templateId: 't', locale, channel: 'email', subject: locale, text: locale, ...overrides };
}

function webhook(body: string): NotifyTemplate {
  return { templateId: 't', locale: 'en-US', channel: 'webhook', body };
}

/** How rendering refuses, as the API reports it. */
function refusal(render: () => unknown): { name: string; field: string | undefined; message: string } {
  try {
    render();
  } catch (error) {
    if (error instanceof TemplateError) return { name: error.name, field: error.field, message: error.message };
    throw error;
  }
  throw new Error('rendered');
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
  it('ignores surrounding whitespace', () => {
    expect(localeChain(' de-CH ', undefined)).toEqual(['de-CH', 'de', 'en-US', 'en']);
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
  it('prefers the own region, then the alphabetically first, whatever order templates are stored in', () => {
    const german = [template('de-LU'), template('de-DE'), template('de-AT'), template('de-CH')];
    for (const stored of [german, [...german].reverse()]) {
      expect(resolveTemplate(stored, 't', 'email', 'de', undefined)?.locale).toBe('de-DE');
      const withoutOwn = stored.filter((t) => t.locale !== 'de-DE');
      expect(resolveTemplate(withoutOwn, 't', 'email', 'de', undefined)?.locale).toBe('de-AT');
    }
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

describe('template sections', () => {
  it('number, separate and sort list items and map entries', () => {
    const model = buildTemplateModel(
      event({
        requiredGrants: ['a:1', 'b:2', 'c:3'],
        message: { templateId: 'm', parameters: { zone: 'eu', app: 'api', env: 'prod' } },
      }),
      { reason: 'requested', approvalLink: link },
    );
    const text = (t: string) => renderEmail(template('en-US', { text: t }), model).text;
    expect(text('{{#requiredGrantsList}}{{^first}}, {{/first}}{{index}}={{value}}{{/requiredGrantsList}}')).toBe(
      '0=a:1, 1=b:2, 2=c:3',
    );
    expect(
      text('{{#requiredGrantsList}}{{#first}}[{{/first}}{{value}}{{#last}}]{{/last}}{{/requiredGrantsList}}'),
    ).toBe('[a:1b:2c:3]');
    expect(text('{{#parametersList}}{{^first}}; {{/first}}{{key}}={{value}}{{/parametersList}}')).toBe(
      'app=api; env=prod; zone=eu',
    );
    expect(text('{{#parametersList}}{{#first}}<{{/first}}{{key}}{{#last}}>{{/last}}{{/parametersList}}')).toBe(
      '<appenvzone>',
    );
    expect(text('{{parameters.zone}} {{requiredGrantCount}} {{stepCount}}')).toBe('eu 3 2');
  });

  it('leave out parameters that are not strings', () => {
    const parameters = { b: 'two', a: 1, c: 'three' } as unknown as Record<string, string>;
    const model = buildTemplateModel(event({ message: { templateId: 'm', parameters } }), {
      reason: 'requested',
      approvalLink: link,
    });
    const text = renderEmail(
      template('en-US', { text: '{{#parametersList}}{{key}}={{value}};{{/parametersList}} [{{parameters.a}}]' }),
      model,
    ).text;
    expect(text).toBe('b=two;c=three; []');
  });

  it('tell policy gates from approvals and show gate messages one per line', () => {
    const t = template('en-US', {
      text: '{{#isPolicyGate}}gate {{policyGate.gateId}}: {{policyGate.messages}}{{/isPolicyGate}}{{^isPolicyGate}}approval{{/isPolicyGate}}',
    });
    const gate = event({
      kind: 'pack.policy.gate',
      policyGate: { gateId: 'sec-7', parameters: {}, messages: ['CVE found', 'Needs review'] },
    });
    expect(renderEmail(t, buildTemplateModel(gate, { reason: 'hold', approvalLink: link })).text).toBe(
      'gate sec-7: CVE found\nNeeds review',
    );
    expect(renderEmail(t, buildTemplateModel(event(), { reason: 'requested', approvalLink: link })).text).toBe(
      'approval',
    );
  });

  it('may use comments, the current value and other delimiters', () => {
    const model = buildTemplateModel(event(), { reason: 'requested', approvalLink: link });
    const text = (t: string) => renderEmail(template('en-US', { text: t }), model).text;
    expect(text('{{! internal note }}{{#expiresAt}}Expires {{.}}{{/expiresAt}}')).toBe(
      'Expires 2025-01-02T00:00:00.000Z',
    );
    expect(text('{{=<% %>=}}run <% runId %>')).toBe('run run-1');
    expect(refusal(() => text('{{=<% %>=}}<% constructor %>')).message).toBe(
      'text: tag "constructor" is not a model field',
    );
  });

  it('refuse forbidden tags nested inside sections, at any depth', () => {
    const model = buildTemplateModel(event(), { reason: 'requested', approvalLink: link });
    const text = (t: string) => () => renderEmail(template('en-US', { text: t }), model);
    const html = (h: string) => () => renderEmail(template('en-US', { html: h }), model);
    expect(refusal(text('{{#requiredGrantsList}}{{constructor}}{{/requiredGrantsList}}'))).toEqual({
      name: 'TemplateError',
      field: 'text',
      message: 'text: tag "constructor" is not a model field',
    });
    expect(refusal(text('{{^policyGate}}{{>partial}}{{/policyGate}}'))).toEqual({
      name: 'TemplateError',
      field: 'text',
      message: 'text: partials ({{>partial}}) are not supported',
    });
    expect(refusal(html('{{#decision}}{{{comment}}}{{/decision}}'))).toEqual({
      name: 'TemplateError',
      field: 'html',
      message: 'html: unescaped tags ({{{comment}}} or {{&comment}}) are not allowed here',
    });
    expect(
      refusal(text('{{#policyGate}}{{#messagesList}}{{value.length}}{{/messagesList}}{{/policyGate}}')).message,
    ).toBe('text: tag "value.length" is not a model field');
  });

  it('refuse tags that are not plain identifiers', () => {
    const model = buildTemplateModel(event(), { reason: 'requested', approvalLink: link });
    for (const tag of ['9lives', 'run-id', 'runId!', 'a..b']) {
      expect(refusal(() => renderEmail(template('en-US', { text: `{{${tag}}}` }), model)).message).toBe(
        `text: tag "${tag}" is not a model field`,
      );
    }
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

  it('folds any line break run in the subject to one space and trims it; unescaped tags are fine outside html', () => {
    const crlf = buildTemplateModel(event({ requestedBy: 'mallory\r\nBcc: evil@example.com\r\n' }), {
      reason: 'requested',
      approvalLink: link,
    });
    const rendered = renderEmail(
      template('en-US', { subject: '  From {{{requestedBy}}}', text: 'By {{&requestedBy}}.' }),
      crlf,
    );
    expect(rendered).toEqual({
      subject: 'From mallory Bcc: evil@example.com',
      text: 'By mallory\r\nBcc: evil@example.com\r\n.',
    });
  });

  it('escapes quotes, backticks and equals signs in html', () => {
    const quoting = buildTemplateModel(event({ requestedBy: "O'Brien `x` a=b" }), {
      reason: 'requested',
      approvalLink: link,
    });
    expect(renderEmail(template('en-US', { html: '<b>{{requestedBy}}</b>' }), quoting).html).toBe(
      '<b>O&#39;Brien &#x60;x&#x60; a&#x3D;b</b>',
    );
  });

  it('names the field that fails to render', () => {
    expect(refusal(() => renderEmail(template('en-US', { subject: '{{constructor}}' }), model))).toEqual({
      name: 'TemplateError',
      field: 'subject',
      message: 'subject: tag "constructor" is not a model field',
    });
    expect(refusal(() => renderEmail(template('en-US', { text: '{{#open}}never closed' }), model))).toEqual({
      name: 'TemplateError',
      field: 'text',
      message: 'text: Unclosed section "open" at 21',
    });
    expect(refusal(() => renderEmail(template('en-US', { html: '{{#open}}' }), model)).field).toBe('html');
  });

  it('refuses templates that lack a subject or text, or are webhook templates', () => {
    const message = 'template t (en-US) is not an email template';
    expect(refusal(() => renderEmail(template('en-US', { text: undefined }), model)).message).toBe(message);
    expect(refusal(() => renderEmail(template('en-US', { subject: undefined }), model)).message).toBe(message);
    expect(refusal(() => renderEmail(template('en-US', { channel: 'webhook' }), model)).message).toBe(message);
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

describe('renderWebhook refusals', () => {
  // Built per test: a model that fails to build fails these tests instead of the whole file's collection.
  const model = () => buildTemplateModel(event(), { reason: 'requested', approvalLink: link });

  it('refuse email templates and templates without a body', () => {
    const message = 'template t (en-US) is not a webhook template';
    expect(refusal(() => renderWebhook({ ...webhook('{}'), channel: 'email' }, model())).message).toBe(message);
    expect(refusal(() => renderWebhook({ templateId: 't', locale: 'en-US', channel: 'webhook' }, model()))).toEqual({
      name: 'TemplateError',
      field: undefined,
      message,
    });
  });

  it('refuse bodies that are not JSON objects, on the body field', () => {
    expect(refusal(() => renderWebhook(webhook('{"a": {{runId}}}'), model()))).toEqual({
      name: 'TemplateError',
      field: 'body',
      message:
        'body: rendered webhook body is not valid JSON (Unexpected token \'r\', "{"a": run-1}" is not valid JSON)',
    });
    for (const body of ['null', '42', '"{{runId}}"', '[]']) {
      expect(refusal(() => renderWebhook(webhook(body), model()))).toEqual({
        name: 'TemplateError',
        field: 'body',
        message: 'body: rendered webhook body must be a JSON object',
      });
    }
    expect(refusal(() => renderWebhook(webhook('{"a": "{{constructor}}"}'), model()))).toEqual({
      name: 'TemplateError',
      field: 'body',
      message: 'body: tag "constructor" is not a model field',
    });
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

describe('validateTemplate renders with an empty and a complete model', () => {
  const accepted = (body: string) => validateTemplate({ templateId: 'x', locale: 'en', channel: 'webhook', body });
  const isJsonRefusal = (errors: { path: string; message: string }[]) =>
    errors.length === 1 && errors[0]?.path === '/body' && /not valid JSON/.test(errors[0].message);

  // Present (non-empty) only in the complete model: a section over them must render valid JSON either way.
  it.each([
    'tenantId',
    'runId',
    'approvalId',
    'planHash',
    'requiredGrants',
    'requiredGrantsList',
    'stepIds',
    'stepIdsList',
    'requestedBy',
    'requestedAt',
    'expiresAt',
    'status',
    'statusReason',
    'messageTemplateId',
    'parametersList',
    'isPolicyGate',
    'policyGate',
    'policyGate.gateId',
    'policyGate.parametersList',
    'policyGate.messages',
    'policyGate.messagesList',
    'approvalLink',
    'decision',
    'decision.decision',
    'decision.approved',
    'decision.decidedBy',
    'decision.decidedAt',
    'decision.comment',
  ])('refuses a body that breaks when %s is present, or when it is absent', (field) => {
    expect(isJsonRefusal(accepted(`{"a": 1{{#${field}}}, "b"{{/${field}}}}`))).toBe(true);
    expect(isJsonRefusal(accepted(`{"a": {{#${field}}}1{{/${field}}}}`))).toBe(true);
  });

  it.each(['kind', 'reason'])('accepts a body that needs %s, present in both models', (field) => {
    expect(accepted(`{"a": {{#${field}}}1{{/${field}}}}`)).toEqual([]);
    expect(isJsonRefusal(accepted(`{"a": 1{{#${field}}}, "b"{{/${field}}}}`))).toBe(true);
  });

  it.each([
    'requiredGrantsList',
    'stepIdsList',
    'parametersList',
    'policyGate.parametersList',
    'policyGate.messagesList',
  ])('accepts a body that needs every item of %s to have a value', (list) => {
    expect(accepted(`{"a": [0{{#${list}}},{{#value}}1{{/value}}{{/${list}}}]}`)).toEqual([]);
  });

  it('refuses input that is no template at all', () => {
    const expected = [{ path: '/channel', message: 'channel must be "email" or "webhook"' }];
    expect(validateTemplate(null)).toEqual(expected);
    expect(validateTemplate(undefined)).toEqual(expected);
    expect(validateTemplate('{"a": 1}')).toEqual(expected);
  });

  it('holds fields to their lengths and refuses unknown properties', () => {
    expect(
      validateTemplate({
        templateId: 't',
        locale: 'en-US',
        channel: 'email',
        subject: 'x'.repeat(501),
        text: '',
        html: '',
        extra: 1,
      }),
    ).toEqual([
      { path: '/extra', message: 'Unexpected property' },
      { path: '/subject', message: 'Expected string length less or equal to 500' },
      { path: '/text', message: 'Expected string length greater or equal to 1' },
      { path: '/html', message: 'Expected string length greater or equal to 1' },
    ]);
    const email = { templateId: 't', locale: 'en-US', channel: 'email', subject: 's' };
    expect(validateTemplate({ ...email, text: 'x'.repeat(20_001) })).toEqual([
      { path: '/text', message: 'Expected string length less or equal to 20000' },
    ]);
    expect(validateTemplate({ ...email, text: 't', subject: '' })).toEqual([
      { path: '/subject', message: 'Expected string length greater or equal to 1' },
    ]);
    expect(validateTemplate({ ...email, text: 't', html: 'x'.repeat(100_001) })).toEqual([
      { path: '/html', message: 'Expected string length less or equal to 100000' },
    ]);
    const hook = { templateId: 't', locale: 'en-US', channel: 'webhook' };
    expect(validateTemplate({ ...hook, body: 'x', extra: 1 })).toEqual([
      { path: '/extra', message: 'Unexpected property' },
      { path: '/body', message: 'Expected string length greater or equal to 2' },
    ]);
    expect(validateTemplate({ ...hook, body: `{"a": "${'x'.repeat(20_000)}"}` })).toEqual([
      { path: '/body', message: 'Expected string length less or equal to 20000' },
    ]);
  });

  it('the API body schema takes email and webhook templates', () => {
    expect(
      Value.Check(TemplateInput, { templateId: 't', locale: 'de', channel: 'email', subject: 's', text: 't' }),
    ).toBe(true);
    expect(Value.Check(TemplateInput, { templateId: 't', locale: 'de', channel: 'webhook', body: '{}' })).toBe(true);
    expect(Value.Check(TemplateInput, { templateId: 't', locale: 'de', channel: 'sms', body: '{}' })).toBe(false);
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

  it('replaces a secret that contains another one whole, in either order', () => {
    const short = 'abcdefgh';
    const long = 'abcdefgh-ijklmnop';
    for (const secrets of [
      [short, long],
      [long, short],
    ]) {
      expect(redactSecrets(`token ${long} and ${short}`, secrets)).toBe('token [redacted] and [redacted]');
    }
  });

  it('finds a secret with spaces in a form-encoded query, and ignores unset secrets', () => {
    const spaced = 'correct horse battery';
    expect(redactSecrets('https://h.example/?q=correct+horse+battery', [undefined as unknown as string, spaced])).toBe(
      'https://h.example/?q=[redacted]',
    );
  });

  it('returns an ordinary copy, with cycles cut', () => {
    const input: Record<string, unknown> = { name: 'n' };
    input.self = input;
    const output = redactSecrets(input, []);
    expect(output).toEqual({ name: 'n', self: '[redacted]' });
    output.name = 'changed';
    delete output.self;
    expect(output).toEqual({ name: 'changed' });
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
