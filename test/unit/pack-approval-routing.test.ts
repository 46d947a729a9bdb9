import { describe, expect, it, vi } from 'vitest';
import {
  compilePredicate,
  recipientProblem,
  routeEvent,
  ruleContext,
  RuleError,
  RuleInput,
  validateRule,
  type NotifyRule,
  type RoutingDefaults,
} from '../../notify/routing.js';
import { Value } from '@sinclair/typebox/value';
import { defaultTemplateIdFor } from '../../notify/default-templates.js';
import type { PackApprovalEvent } from '../../workflows/pack-approval/definitions.js';

import { packApprovalEvent, RESUME_TOKEN } from '../support/fixtures.js';

/** The fixture event with three plan steps (predicates below count them). */
function approvalEvent(overrides: Partial<PackApprovalEvent> = {}): PackApprovalEvent {
  return packApprovalEvent({ stepIds: ['build', 'test', 'deploy'], ...overrides });
}

function gateEvent(gateId: string): PackApprovalEvent {
  return approvalEvent({
    kind: 'pack.policy.gate',
    type: 'PackApprovalUpdated',
    status: 'held',
    policyGate: { gateId, parameters: { level: 'high' }, messages: ['blocked'] },
  });
}

function rule(overrides: Partial<NotifyRule> & Pick<NotifyRule, 'ruleId'>): NotifyRule {
  return {
    tenantId: 'tenant-a',
    name: `rule ${overrides.ruleId}`,
    predicate: 'true',
    channels: [{ channel: 'email', recipients: ['ops@example.com'] }],
    enabled: true,
    priority: 100,
    ...overrides,
  };
}

const defaults: RoutingDefaults = { templateIdFor: defaultTemplateIdFor, locale: 'en-US' };

/** How `compilePredicate` refuses `text`, as the API reports it. */
function refusal(text: string): { name: string; field: string; message: string } {
  try {
    compilePredicate(text);
  } catch (error) {
    if (error instanceof RuleError) return { name: error.name, field: error.field, message: error.message };
    throw error;
  }
  throw new Error(`${text} compiled`);
}

const REGEX_REFUSAL = {
  name: 'RuleError',
  field: 'predicate',
  message: 'regular expressions (matches) are not allowed in predicates; use startsWith, endsWith or contains',
};
const NESTING_REFUSAL = {
  name: 'RuleError',
  field: 'predicate',
  message: 'comprehensions (all, exists, exists_one, map, filter) may be nested at most 2 deep',
};

describe('compilePredicate', () => {
  it.each([
    {
      text: 'event.kind == "pack.approval"',
      label: 'approval',
      event: approvalEvent(),
      reason: 'requested' as const,
      expected: true,
    },
    {
      text: 'event.kind == "pack.approval"',
      label: 'gate sec-1',
      event: gateEvent('sec-1'),
      reason: 'hold' as const,
      expected: false,
    },
    {
      text: 'reason == "requested" && "deploy:prod" in event.requiredGrants',
      label: 'approval',
      event: approvalEvent(),
      reason: 'requested' as const,
      expected: true,
    },
    {
      text: 'reason == "requested" && "deploy:prod" in event.requiredGrants',
      label: 'approval',
      event: approvalEvent(),
      reason: 'reminder' as const,
      expected: false,
    },
    {
      text: 'reason == "requested" && "deploy:prod" in event.requiredGrants',
      label: 'staging grant',
      event: approvalEvent({ requiredGrants: ['deploy:staging'] }),
      reason: 'requested' as const,
      expected: false,
    },
    {
      text: 'event.kind == "pack.policy.gate" && event.gateId.startsWith("sec-")',
      label: 'gate sec-42',
      event: gateEvent('sec-42'),
      reason: 'hold' as const,
      expected: true,
    },
    {
      text: 'event.kind == "pack.policy.gate" && event.gateId.startsWith("sec-")',
      label: 'gate ops-1',
      event: gateEvent('ops-1'),
      reason: 'hold' as const,
      expected: false,
    },
    {
      text: 'event.kind == "pack.policy.gate" && event.gateId.startsWith("sec-")',
      label: 'approval',
      event: approvalEvent(),
      reason: 'requested' as const,
      expected: false,
    },
    {
      text: 'size(event.stepIds) > 2',
      label: '3 steps',
      event: approvalEvent(),
      reason: 'requested' as const,
      expected: true,
    },
    {
      text: 'size(event.stepIds) > 2',
      label: '2 steps',
      event: approvalEvent({ stepIds: ['a', 'b'] }),
      reason: 'requested' as const,
      expected: false,
    },
    {
      text: 'event.hasPolicyGate && event.status == "held"',
      label: 'gate g',
      event: gateEvent('g'),
      reason: 'hold' as const,
      expected: true,
    },
    {
      text: 'event.stepIds.exists(s, s.endsWith("ploy"))',
      label: 'approval',
      event: approvalEvent(),
      reason: 'requested' as const,
      expected: true,
    },
    {
      text: 'event.hasPolicyGate',
      label: 'approval',
      event: approvalEvent(),
      reason: 'requested' as const,
      expected: false,
    },
    {
      text: '!event.hasPolicyGate && event.status == "" && event.gateId == ""',
      label: 'approval',
      event: approvalEvent(),
      reason: 'requested' as const,
      expected: true,
    },
    {
      text: '!event.hasPolicyGate && event.status == "" && event.gateId == ""',
      label: 'gate g',
      event: gateEvent('g'),
      reason: 'hold' as const,
      expected: false,
    },
    {
      text: 'event.stepIds.all(a, event.stepIds.exists(b, b.startsWith(a)))',
      label: 'approval',
      event: approvalEvent(),
      reason: 'requested' as const,
      expected: true,
    },
    {
      text: 'dyn(event.hasPolicyGate)',
      label: 'gate g',
      event: gateEvent('g'),
      reason: 'hold' as const,
      expected: true,
    },
    {
      text: 'dyn(event.locale) == null',
      label: 'approval',
      event: approvalEvent(),
      reason: 'requested' as const,
      expected: false,
    },
  ])('$text on $label ($reason) → $expected', ({ text, event, reason, expected }) => {
    expect(compilePredicate(text)(ruleContext(event, reason))).toBe(expected);
  });

  it('rejects syntax errors with a RuleError on the predicate field', () => {
    let caught: unknown;
    try {
      compilePredicate('event.kind ==');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RuleError);
    expect((caught as RuleError).field).toBe('predicate');
    expect((caught as RuleError).message).toMatch(/unexpected token/i);
  });

  it('rejects predicates that type-check to something other than bool', () => {
    expect(() => compilePredicate('1 + 1')).toThrow(/must evaluate to a bool, not int/);
    expect(() => compilePredicate('event.runId')).toThrow(/not string/);
  });

  it('treats process.exit() as an unknown identifier and never runs anything', () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation(() => {
      throw new Error('process.exit was called');
    });
    try {
      expect(() => compilePredicate('process.exit()')).toThrow(/Unknown variable: process/);
      expect(() => compilePredicate('exit()')).toThrow(RuleError);
      expect(() => compilePredicate('require("child_process")')).toThrow(RuleError);
      expect(() => compilePredicate('this.constructor.constructor("return process")()')).toThrow(RuleError);
      expect(exit).not.toHaveBeenCalled();
    } finally {
      exit.mockRestore();
    }
  });

  it('rejects unknown fields, empty text, regular expressions and deeply nested comprehensions', () => {
    expect(() => compilePredicate('event.resumeCallback.token == "x"')).toThrow(/No such key: resumeCallback/);
    expect(() => compilePredicate('   ')).toThrow(/must not be empty/);
    expect(() => compilePredicate('event.runId.matches("(a+)+$")')).toThrow(/regular expressions/);
    expect(() =>
      compilePredicate('event.stepIds.all(a, event.stepIds.all(b, event.stepIds.all(c, a + b + c != "")))'),
    ).toThrow(/nested at most 2/);
    expect(() => compilePredicate('x'.repeat(2001))).toThrow(/at most 2000/);
  });

  it.each([
    'event.runId.matches("^run-")',
    'matches(event.runId, "^run-")',
    'dyn(event.runId).matches("^run-")',
    '"run-1".matches(event.runId)',
    '!event.runId.matches("^run-")',
    'event.kind == "pack.approval" || event.runId.matches("^run-")',
    'event.stepIds.exists(s, s.matches("^dep"))',
    '[event.runId.matches("^run-")][0]',
    '{"k": event.runId.matches("^run-")}["k"]',
    'event.hasPolicyGate ? event.gateId.matches("^sec-") : false',
  ])('refuses the regular expression in %s', (text) => {
    expect(refusal(text)).toEqual(REGEX_REFUSAL);
  });

  it.each([
    'event.stepIds.all(c, c != b)',
    'event.stepIds.exists(c, c == a)',
    'event.stepIds.exists_one(c, c == b)',
    'size(event.stepIds.map(c, c + a)) > 0',
    'size(event.stepIds.filter(c, c == b)) > 0',
  ])('refuses %s as a third level of comprehension', (inner) => {
    expect(refusal(`event.stepIds.all(a, event.stepIds.exists(b, ${inner}))`)).toEqual(NESTING_REFUSAL);
  });

  it('reports the problem and its 1-based position', () => {
    expect(refusal('event.kind ==')).toEqual({
      name: 'RuleError',
      field: 'predicate',
      message: 'Unexpected token: EOF (at position 14)',
    });
    expect(refusal('event.kind == 1').message).toBe('no such overload: string == int (at position 1)');
    expect(refusal('event.stepIds')).toEqual({
      name: 'RuleError',
      field: 'predicate',
      message: 'predicate must evaluate to a bool, not list<string>',
    });
    expect(refusal('   ')).toEqual({ name: 'RuleError', field: 'predicate', message: 'predicate must not be empty' });
    expect(refusal('x'.repeat(2001))).toEqual({
      name: 'RuleError',
      field: 'predicate',
      message: 'predicate must be at most 2000 characters',
    });
  });

  it.each([
    ['event.kind == 1', 'string == int'],
    ['event.type == 1', 'string == int'],
    ['event.tenantId == 1', 'string == int'],
    ['event.runId == 1', 'string == int'],
    ['event.approvalId == 1', 'string == int'],
    ['event.planHash == 1', 'string == int'],
    ['event.requestedBy == 1', 'string == int'],
    ['event.locale == 1', 'string == int'],
    ['event.status == 1', 'string == int'],
    ['event.reason == 1', 'string == int'],
    ['event.gateId == 1', 'string == int'],
    ['reason == 1', 'string == int'],
    ['event.requiredGrants == "deploy:prod"', 'list<string> == string'],
    ['event.stepIds == "build"', 'list<string> == string'],
    ['event.hasPolicyGate == "true"', 'bool == string'],
  ])('refuses the type mistake %s', (text, overload) => {
    expect(refusal(text)).toEqual({
      name: 'RuleError',
      field: 'predicate',
      message: `no such overload: ${overload} (at position 1)`,
    });
  });

  it('refuses oversized expressions and optional-field syntax within the length limit', () => {
    expect(refusal(`${'true && '.repeat(240)}true`).message).toMatch(/^Exceeded maxAstNodes \(400\)/);
    expect(refusal(`${'('.repeat(40)}true${')'.repeat(40)}`).message).toMatch(/^Exceeded maxDepth \(32\)/);
    const list = Array.from({ length: 101 }, (_, i) => i).join(',');
    expect(refusal(`size([${list}]) > 0`).message).toMatch(/^Exceeded maxListElements \(100\)/);
    expect(refusal('event.?locale.orValue("en") == "en"').field).toBe('predicate');
  });
});

describe('ruleContext', () => {
  it('exposes strings and lists only, never the resume callback', () => {
    const context = ruleContext(gateEvent('sec-9'), 'hold');
    expect(context.reason).toBe('hold');
    expect(context.event).toMatchObject({
      kind: 'pack.policy.gate',
      type: 'PackApprovalUpdated',
      gateId: 'sec-9',
      hasPolicyGate: true,
      status: 'held',
      locale: '',
      reason: '',
    });
    expect(Object.keys(context.event)).not.toContain('resumeCallback');
    expect(JSON.stringify(context)).not.toContain(RESUME_TOKEN);
    expect(JSON.stringify(context)).not.toContain('runner.example');
  });
});

describe('validateRule', () => {
  const valid = {
    name: 'prod deploys',
    predicate: '"deploy:prod" in event.requiredGrants',
    channels: [
      { channel: 'email', recipients: ['ops@example.com'] },
      { channel: 'webhook', recipients: ['https://hooks.example.com/x?a=1', 'http://127.0.0.1:8080/hook'] },
    ],
  };

  it('accepts a valid rule and applies defaults', () => {
    expect(validateRule(valid)).toEqual([]);
  });

  it('reports schema, predicate and recipient problems with JSON-pointer paths', () => {
    const errors = validateRule({
      ...valid,
      name: '',
      predicate: '1 + 1',
      templateId: 'Bad Id',
      priority: 5000,
      channels: [
        { channel: 'email', recipients: ['not-an-email', 'ok@example.com'] },
        { channel: 'webhook', recipients: ['http://hooks.example.com/x', 'https://user:pw@example.com/', 'ftp://x'] },
      ],
    });
    const paths = errors.map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/name',
        '/predicate',
        '/templateId',
        '/priority',
        '/channels/0/recipients/0',
        '/channels/1/recipients/0',
        '/channels/1/recipients/1',
        '/channels/1/recipients/2',
      ]),
    );
    expect(paths).not.toContain('/channels/0/recipients/1');
    expect(errors.find((e) => e.path === '/predicate')?.message).toMatch(/bool/);
    expect(errors.find((e) => e.path === '/channels/1/recipients/0')?.message).toMatch(/https/);
  });

  it('rejects empty channel lists, too many recipients and unknown properties', () => {
    const paths = validateRule({ ...valid, channels: [], extra: 1 }).map((e) => e.path);
    expect(paths).toContain('/channels');
    expect(paths.some((p) => p === '/extra' || p === '/')).toBe(true);
    const many = Array.from({ length: 51 }, (_, i) => `u${i}@example.com`);
    expect(validateRule({ ...valid, channels: [{ channel: 'email', recipients: many }] }).map((e) => e.path)).toContain(
      '/channels/0/recipients',
    );
  });

  it('checks recipient formats per channel', () => {
    expect(recipientProblem('email', 'a.b+tag@sub.example.org')).toBeUndefined();
    expect(recipientProblem('email', 'a b@example.org')).toBeDefined();
    expect(recipientProblem('email', 'https://example.org')).toBeDefined();
    expect(recipientProblem('webhook', 'http://localhost:3000/h')).toBeUndefined();
    expect(recipientProblem('webhook', 'http://[::1]/h')).toBeUndefined();
    expect(recipientProblem('webhook', '/relative/path')).toBe('must be an absolute URL');
  });

  it('refuses webhook URLs that only look local or that carry credentials', () => {
    expect(recipientProblem('webhook', 'http://127.0.0.1.evil.example/hook')).toBe(
      'must use https (plain http is allowed only for loopback hosts: 127.0.0.0/8, ::1, localhost; got host "127.0.0.1.evil.example")',
    );
    expect(recipientProblem('webhook', 'http://localhost.evil.example/hook')).toMatch(/^must use https/);
    expect(recipientProblem('webhook', 'http://evil.example/127.0.0.1')).toMatch(/^must use https/);
    expect(recipientProblem('webhook', 'http://127.0.0.1:8080/hook')).toBeUndefined();
    expect(recipientProblem('webhook', 'https://user@hooks.example.com/')).toBe('must not carry credentials');
    expect(recipientProblem('webhook', 'https://:secret@hooks.example.com/')).toBe('must not carry credentials');
    expect(recipientProblem('webhook', 'http://user@127.0.0.1/')).toBe('must not carry credentials');
  });

  it('accepts addresses up to 254 characters with one-letter labels, and nothing around them', () => {
    const label = 'd'.repeat(63);
    const longest = `a@${label}.${label}.${label}.${'d'.repeat(60)}`;
    expect(longest).toHaveLength(254);
    expect(recipientProblem('email', longest)).toBeUndefined();
    expect(recipientProblem('email', `${longest.slice(0, -1)}dd`)).toBe('must be an email address');
    expect(recipientProblem('email', 'ops@x.y.io')).toBeUndefined();
    expect(recipientProblem('email', 'ops@example.com, boss@example.com')).toBe('must be an email address');
    expect(recipientProblem('email', 'ops@example.com>')).toBe('must be an email address');
  });

  it('reports each malformed part once, by the schema, without checking what it cannot read', () => {
    const errors = (input: unknown) => validateRule(input);
    expect(errors('not a rule')).toEqual([{ path: '/', message: 'Expected object' }]);
    expect(errors(null)).toEqual([{ path: '/', message: 'Expected object' }]);
    expect(errors({ ...valid, predicate: 42 })).toEqual([{ path: '/predicate', message: 'Expected string' }]);
    expect(errors({ ...valid, predicate: ['true'] })).toEqual([{ path: '/predicate', message: 'Expected string' }]);
    expect(errors({ ...valid, predicate: '' })).toEqual([
      { path: '/predicate', message: 'Expected string length greater or equal to 1' },
    ]);
    expect(errors({ ...valid, predicate: `true${' '.repeat(1997)}` })).toEqual([
      { path: '/predicate', message: 'Expected string length less or equal to 2000' },
    ]);
    expect(errors({ ...valid, predicate: `1 + 1${' '.repeat(1995)}` })).toEqual([
      { path: '/predicate', message: 'predicate must evaluate to a bool, not int' },
    ]);
    expect(errors({ ...valid, channels: 'email' })).toEqual([{ path: '/channels', message: 'Expected array' }]);
    expect(errors({ ...valid, channels: [null] })).toEqual([{ path: '/channels/0', message: 'Expected object' }]);
    expect(errors({ ...valid, channels: [{ channel: 'sms', recipients: ['x'] }] })).toEqual([
      { path: '/channels/0/channel', message: 'Expected union value' },
    ]);
    expect(errors({ ...valid, channels: [{ channel: 'email', recipients: 'ops@example.com' }] })).toEqual([
      { path: '/channels/0/recipients', message: 'Expected array' },
    ]);
    expect(errors({ ...valid, channels: [{ channel: 'email', recipients: [5] }] })).toEqual([
      { path: '/channels/0/recipients/0', message: 'Expected string' },
    ]);
    expect(
      errors({
        ...valid,
        channels: [{ channel: 'webhook', recipients: [`https://hooks.example.com/${'a'.repeat(2030)}`] }],
      }),
    ).toEqual([{ path: '/channels/0/recipients/0', message: 'Expected string length less or equal to 2048' }]);
    expect(
      errors({ ...valid, channels: [{ channel: 'email', recipients: ['ops@example.com'], cc: ['boss@example.com'] }] }),
    ).toEqual([{ path: '/channels/0/cc', message: 'Unexpected property' }]);
  });

  it('enables a rule created without enabled or priority, at priority 100', () => {
    expect(Value.Default(RuleInput, Value.Clone(valid))).toMatchObject({ enabled: true, priority: 100 });
  });
});

describe('routeEvent', () => {
  it('routes policy-gate events and approvals to their own rules', () => {
    const rules = [
      rule({
        ruleId: 'gates',
        predicate: 'event.hasPolicyGate',
        channels: [{ channel: 'email', recipients: ['sec@example.com'] }],
      }),
      rule({
        ruleId: 'approvals',
        predicate: '!event.hasPolicyGate && event.gateId == "" && event.status == ""',
        channels: [{ channel: 'email', recipients: ['approvers@example.com'] }],
      }),
    ];
    const to = (event: PackApprovalEvent, reason: 'requested' | 'hold') =>
      routeEvent(rules, event, reason, defaults).intents.map((i) => i.recipient);
    expect(to(approvalEvent(), 'requested')).toEqual(['approvers@example.com']);
    expect(to(gateEvent('sec-1'), 'hold')).toEqual(['sec@example.com']);
  });

  it('orders rules of equal priority by ruleId, whatever order they are stored in', () => {
    const ids = ['r-c', 'r-a', 'r-e', 'r-b', 'r-d'];
    const rules = ids.map((ruleId) =>
      rule({ ruleId, channels: [{ channel: 'email', recipients: [`${ruleId}@example.com`] }] }),
    );
    for (const stored of [rules, [...rules].reverse()]) {
      expect(routeEvent(stored, approvalEvent(), 'requested', defaults).intents.map((i) => i.recipient)).toEqual([
        'r-a@example.com',
        'r-b@example.com',
        'r-c@example.com',
        'r-d@example.com',
        'r-e@example.com',
      ]);
    }
  });

  it('treats recipients differing in surrounding space or email case as one, and keeps other recipients apart', () => {
    const rules = [
      rule({
        ruleId: 'r1',
        channels: [
          { channel: 'email', recipients: [' Ops@Example.com ', 'straße@example.com'] },
          { channel: 'webhook', recipients: [' https://hooks.example.com/A ', 'not a url', 'also not a url'] },
        ],
      }),
      rule({
        ruleId: 'r2',
        channels: [
          { channel: 'email', recipients: ['ops@example.com', 'strasse@example.com'] },
          { channel: 'webhook', recipients: ['https://hooks.example.com/A', 'https://hooks.example.com/a'] },
        ],
      }),
    ];
    const { intents } = routeEvent(rules, approvalEvent(), 'requested', defaults);
    expect(intents.map((i) => [i.channel, i.recipient])).toEqual([
      ['email', 'Ops@Example.com'],
      ['email', 'straße@example.com'],
      ['webhook', 'https://hooks.example.com/A'],
      ['webhook', 'not a url'],
      ['webhook', 'also not a url'],
      ['email', 'strasse@example.com'],
      ['webhook', 'https://hooks.example.com/a'],
    ]);
  });

  it('reports a predicate that yields no boolean when evaluated', () => {
    const { intents, errors } = routeEvent(
      [rule({ ruleId: 'dyn', predicate: 'dyn(event.runId)' })],
      approvalEvent(),
      'requested',
      defaults,
    );
    expect(intents).toEqual([]);
    expect(errors).toEqual([{ ruleId: 'dyn', message: 'predicate evaluated to string, not a boolean' }]);
  });

  it('orders by priority then ruleId, dedupes recipients and keeps the first rule’s template', () => {
    const rules: NotifyRule[] = [
      rule({
        ruleId: 'b-rule',
        priority: 10,
        templateId: 'tenant.b',
        channels: [
          { channel: 'email', recipients: ['Ops@Example.com', 'sec@example.com'] },
          { channel: 'webhook', recipients: ['https://hooks.example.com/a'] },
        ],
      }),
      rule({
        ruleId: 'a-rule',
        priority: 10,
        templateId: 'tenant.a',
        channels: [{ channel: 'email', recipients: ['ops@example.com'] }],
      }),
      rule({
        ruleId: 'c-rule',
        priority: 1,
        channels: [{ channel: 'webhook', recipients: ['https://hooks.example.com/a', 'https://hooks.example.com/c'] }],
      }),
      rule({
        ruleId: 'disabled',
        priority: 0,
        enabled: false,
        channels: [{ channel: 'email', recipients: ['x@y.io'] }],
      }),
      rule({ ruleId: 'no-match', priority: 0, predicate: 'reason == "expired"' }),
    ];
    const { intents, errors } = routeEvent(rules, approvalEvent({ locale: 'de-DE' }), 'requested', defaults);
    expect(errors).toEqual([]);
    expect(intents).toEqual([
      {
        channel: 'webhook',
        recipient: 'https://hooks.example.com/a',
        templateId: 'pack-approval.requested',
        locale: 'de-DE',
        reason: 'requested',
      },
      {
        channel: 'webhook',
        recipient: 'https://hooks.example.com/c',
        templateId: 'pack-approval.requested',
        locale: 'de-DE',
        reason: 'requested',
      },
      { channel: 'email', recipient: 'ops@example.com', templateId: 'tenant.a', locale: 'de-DE', reason: 'requested' },
      { channel: 'email', recipient: 'sec@example.com', templateId: 'tenant.b', locale: 'de-DE', reason: 'requested' },
    ]);
  });

  it('uses the default locale and the reason’s default template', () => {
    const { intents } = routeEvent(
      [rule({ ruleId: 'r1', predicate: 'event.gateId.startsWith("sec-")' })],
      gateEvent('sec-1'),
      'hold',
      { templateIdFor: defaultTemplateIdFor, locale: 'fr-FR' },
    );
    expect(intents).toEqual([
      {
        channel: 'email',
        recipient: 'ops@example.com',
        templateId: 'pack-policy.hold',
        locale: 'fr-FR',
        reason: 'hold',
      },
    ]);
  });

  it('counts runtime and stored-compile errors as false and reports them', () => {
    const rules = [
      rule({ ruleId: 'oob', priority: 1, predicate: 'event.stepIds[10] == "x"' }),
      rule({ ruleId: 'broken', priority: 2, predicate: 'event.kind ==' }),
      rule({ ruleId: 'other-tenant', priority: 3, tenantId: 'tenant-b' }),
      rule({
        ruleId: 'ok',
        priority: 4,
        predicate: 'event.kind == "pack.approval"',
        channels: [{ channel: 'email', recipients: ['fallback@example.com'] }],
      }),
    ];
    const { intents, errors } = routeEvent(rules, approvalEvent(), 'requested', defaults);
    expect(intents.map((i) => i.recipient)).toEqual(['fallback@example.com']);
    expect(errors.map((e) => e.ruleId)).toEqual(['oob', 'broken', 'other-tenant']);
    expect(errors[0]?.message).toMatch(/index out of bounds/);
    expect(errors[1]?.message).toMatch(/unexpected token/i);
    expect(errors.map((e) => e.message)).toEqual([
      'No such key: index out of bounds, index 10 >= size 3 (at position 1)',
      'Unexpected token: EOF (at position 14)',
      'rule belongs to another tenant; skipped',
    ]);
  });

  it('returns no intents when no rule matches', () => {
    const { intents, errors } = routeEvent(
      [rule({ ruleId: 'r', predicate: 'event.kind == "pack.policy.gate"' })],
      approvalEvent(),
      'requested',
      defaults,
    );
    expect(intents).toEqual([]);
    expect(errors).toEqual([]);
  });
});
