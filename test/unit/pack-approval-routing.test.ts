import { describe, expect, it, vi } from 'vitest';
import {
  compilePredicate,
  recipientProblem,
  routeEvent,
  ruleContext,
  RuleError,
  validateRule,
  type NotifyRule,
  type RoutingDefaults,
} from '../../notify/routing.js';
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
});

describe('routeEvent', () => {
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
