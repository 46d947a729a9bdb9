/**
 * Built-in notification templates of pack approvals, used when a tenant has not stored its own: every template id
 * for email and webhook, in `en-US` and `de-DE`. Emails carry the event's message parameters (pack, version,
 * environment…), the plan hash, steps, required grants, expiry and the approval link; policy-gate emails add the gate id, parameters and messages. All webhooks share one JSON payload
 * shape (`type`, `summary`, identifiers, lists, gate and decision objects or null) so receivers parse one format.
 * Rendered by `templates.ts` against an `ApprovalTemplateModel`.
 */
import type { NotifyReason } from './routing.js';
import type { NotifyTemplate } from './templates.js';

/** The built-in template ids. */
export const DEFAULT_TEMPLATE_IDS = {
  requested: 'pack-approval.requested',
  reminder: 'pack-approval.reminder',
  expired: 'pack-approval.expired',
  decided: 'pack-approval.decided',
  hold: 'pack-policy.hold',
  released: 'pack-policy.released',
} as const satisfies Record<NotifyReason, string>;

/** The built-in template id of a notification reason. */
export function defaultTemplateIdFor(reason: NotifyReason): string {
  return DEFAULT_TEMPLATE_IDS[reason];
}

type Locale = 'en-US' | 'de-DE';

/** Labels of the detail block in English; `LABELS` holds every locale. */
const EN_LABELS = {
  tenant: 'Tenant',
  run: 'Run',
  approval: 'Approval',
  details: 'Details',
  planHash: 'Plan hash',
  steps: 'Steps',
  grants: 'Required grants',
  requestedBy: 'Requested by',
  requestedAt: 'Requested at',
  expires: 'Expires',
  noExpiry: 'no expiry',
  none: 'none',
  gate: 'Policy gate',
  parameters: 'Parameters',
  messages: 'Messages',
  decision: 'Decision',
  approved: 'approved',
  rejected: 'rejected',
  by: 'by',
  at: 'at',
  comment: 'Comment',
  status: 'Status',
  link: 'Review the approval',
  linkText: 'Review and decide',
  viewText: 'View the approval',
  statusReason: 'Reason',
};
type Labels = Record<keyof typeof EN_LABELS, string>;

/** Labels of the detail block, per locale. */
const LABELS: Record<Locale, Labels> = {
  'en-US': EN_LABELS,
  'de-DE': {
    tenant: 'Mandant',
    run: 'Lauf',
    approval: 'Freigabe',
    details: 'Details',
    planHash: 'Plan-Hash',
    steps: 'Schritte',
    grants: 'Erforderliche Berechtigungen',
    requestedBy: 'Angefordert von',
    requestedAt: 'Angefordert am',
    expires: 'Läuft ab',
    noExpiry: 'kein Ablauf',
    none: 'keine',
    gate: 'Richtlinien-Gate',
    parameters: 'Parameter',
    messages: 'Meldungen',
    decision: 'Entscheidung',
    approved: 'genehmigt',
    rejected: 'abgelehnt',
    by: 'von',
    at: 'am',
    comment: 'Kommentar',
    status: 'Status',
    link: 'Freigabe ansehen',
    linkText: 'Prüfen und entscheiden',
    viewText: 'Freigabe ansehen',
    statusReason: 'Begründung',
  },
};

/** Localised texts of one template id: subject, lead paragraph, and which optional blocks the email shows. */
interface Copy {
  subject: string;
  lead: string;
  gate?: boolean;
  decision?: boolean;
  /** The approval is closed: the link is for viewing, not deciding. */
  closed?: boolean;
}

const COPY: Record<string, Record<Locale, Copy>> = {
  [DEFAULT_TEMPLATE_IDS.requested]: {
    'en-US': {
      subject: 'Approval required: pack run {{runId}}',
      lead: 'Pack run {{runId}} is waiting for your approval before it can continue. Please review the plan and approve or reject it.',
    },
    'de-DE': {
      subject: 'Freigabe erforderlich: Pack-Lauf {{runId}}',
      lead: 'Der Pack-Lauf {{runId}} wartet auf Ihre Freigabe, bevor er fortgesetzt werden kann. Bitte prüfen Sie den Plan und genehmigen oder lehnen Sie ihn ab.',
    },
  },
  [DEFAULT_TEMPLATE_IDS.reminder]: {
    'en-US': {
      subject: 'Reminder: approval pending for pack run {{runId}}',
      lead: 'Pack run {{runId}} is still waiting for an approval decision.',
    },
    'de-DE': {
      subject: 'Erinnerung: Freigabe für Pack-Lauf {{runId}} ausstehend',
      lead: 'Der Pack-Lauf {{runId}} wartet weiterhin auf eine Freigabeentscheidung.',
    },
  },
  [DEFAULT_TEMPLATE_IDS.expired]: {
    'en-US': {
      closed: true,
      subject: 'Approval expired: pack run {{runId}}',
      lead: 'The approval request for pack run {{runId}} expired without a decision. The run will not continue unless it is requested again.',
    },
    'de-DE': {
      closed: true,
      subject: 'Freigabe abgelaufen: Pack-Lauf {{runId}}',
      lead: 'Die Freigabeanfrage für den Pack-Lauf {{runId}} ist ohne Entscheidung abgelaufen. Der Lauf wird nur fortgesetzt, wenn die Freigabe erneut angefordert wird.',
    },
  },
  [DEFAULT_TEMPLATE_IDS.decided]: {
    'en-US': {
      closed: true,
      subject: 'Approval decided: pack run {{runId}}',
      lead: 'The approval for pack run {{runId}} has been decided.',
      decision: true,
    },
    'de-DE': {
      closed: true,
      subject: 'Freigabe entschieden: Pack-Lauf {{runId}}',
      lead: 'Über die Freigabe für den Pack-Lauf {{runId}} wurde entschieden.',
      decision: true,
    },
  },
  [DEFAULT_TEMPLATE_IDS.hold]: {
    'en-US': {
      subject: 'Policy hold: pack run {{runId}} (gate {{policyGate.gateId}})',
      lead: 'Pack run {{runId}} is held by a policy gate and will not continue until the gate is released.',
      gate: true,
    },
    'de-DE': {
      subject: 'Richtlinien-Sperre: Pack-Lauf {{runId}} (Gate {{policyGate.gateId}})',
      lead: 'Der Pack-Lauf {{runId}} wird durch ein Richtlinien-Gate angehalten und erst nach dessen Freigabe fortgesetzt.',
      gate: true,
    },
  },
  [DEFAULT_TEMPLATE_IDS.released]: {
    'en-US': {
      closed: true,
      subject: 'Policy hold released: pack run {{runId}} (gate {{policyGate.gateId}})',
      lead: 'The policy gate holding pack run {{runId}} has been released.',
      gate: true,
    },
    'de-DE': {
      closed: true,
      subject: 'Richtlinien-Sperre aufgehoben: Pack-Lauf {{runId}} (Gate {{policyGate.gateId}})',
      lead: 'Das Richtlinien-Gate, das den Pack-Lauf {{runId}} angehalten hat, wurde aufgehoben.',
      gate: true,
    },
  },
};

/** Plain-text email body. */
function emailText(copy: Copy, l: Labels): string {
  const lines = [
    copy.lead,
    '',
    `${l.tenant}: {{tenantId}}`,
    `${l.run}: {{runId}}`,
    `${l.approval}: {{approvalId}}`,
    `${l.details}: {{#parametersList}}{{key}}={{value}}{{^last}}, {{/last}}{{/parametersList}}{{^parametersList}}${l.none}{{/parametersList}}`,
    `${l.planHash}: {{planHash}}`,
    `${l.steps}: {{#stepCount}}{{stepIds}}{{/stepCount}}{{^stepCount}}${l.none}{{/stepCount}}`,
    `${l.grants}: {{#requiredGrantCount}}{{requiredGrants}}{{/requiredGrantCount}}{{^requiredGrantCount}}${l.none}{{/requiredGrantCount}}`,
    `${l.requestedBy}: {{requestedBy}}`,
    `${l.requestedAt}: {{requestedAt}}`,
    `${l.expires}: {{#expiresAt}}{{expiresAt}}{{/expiresAt}}{{^expiresAt}}${l.noExpiry}{{/expiresAt}}`,
  ];
  if (copy.gate) {
    lines.push(
      `${l.gate}: {{policyGate.gateId}}`,
      `${l.parameters}: {{#policyGate.parametersList}}{{key}}={{value}}{{^last}}, {{/last}}{{/policyGate.parametersList}}{{^policyGate.parametersList}}${l.none}{{/policyGate.parametersList}}`,
      `${l.messages}:`,
      '{{#policyGate.messagesList}}',
      '- {{value}}',
      '{{/policyGate.messagesList}}',
    );
  }
  if (copy.decision) {
    lines.push(
      `{{#decision}}${l.decision}: {{#approved}}${l.approved}{{/approved}}{{#rejected}}${l.rejected}{{/rejected}} ${l.by} {{decidedBy}} ${l.at} {{decidedAt}}{{/decision}}{{^decision}}${l.status}: {{status}}{{/decision}}`,
      `{{#decision.comment}}${l.comment}: {{decision.comment}}{{/decision.comment}}{{#statusReason}}{{^decision}}${l.statusReason}: {{statusReason}}{{/decision}}{{/statusReason}}`,
    );
  }
  lines.push('', `${copy.closed ? l.viewText : l.linkText}: {{approvalLink}}`, '');
  return lines.join('\n');
}

/** HTML email body: a lead paragraph, a detail table and the link. */
function emailHtml(copy: Copy, l: Labels, lang: string): string {
  const row = (label: string, value: string): string =>
    `<tr><th align="left" style="padding:2px 12px 2px 0">${label}</th><td>${value}</td></tr>`;
  const rows = [
    row(l.tenant, '{{tenantId}}'),
    row(l.run, '{{runId}}'),
    row(l.approval, '{{approvalId}}'),
    row(
      l.details,
      `{{#parametersList}}{{key}}={{value}}{{^last}}, {{/last}}{{/parametersList}}{{^parametersList}}${l.none}{{/parametersList}}`,
    ),
    row(l.planHash, '<code>{{planHash}}</code>'),
    row(l.steps, `{{#stepCount}}{{stepIds}}{{/stepCount}}{{^stepCount}}${l.none}{{/stepCount}}`),
    row(
      l.grants,
      `{{#requiredGrantCount}}{{requiredGrants}}{{/requiredGrantCount}}{{^requiredGrantCount}}${l.none}{{/requiredGrantCount}}`,
    ),
    row(l.requestedBy, '{{requestedBy}}'),
    row(l.requestedAt, '{{requestedAt}}'),
    row(l.expires, `{{#expiresAt}}{{expiresAt}}{{/expiresAt}}{{^expiresAt}}${l.noExpiry}{{/expiresAt}}`),
  ];
  if (copy.gate) {
    rows.push(
      row(l.gate, '{{policyGate.gateId}}'),
      row(
        l.parameters,
        `{{#policyGate.parametersList}}{{key}}={{value}}{{^last}}, {{/last}}{{/policyGate.parametersList}}{{^policyGate.parametersList}}${l.none}{{/policyGate.parametersList}}`,
      ),
      row(
        l.messages,
        `{{#policyGate.messagesList}}{{value}}{{^last}}<br>{{/last}}{{/policyGate.messagesList}}{{^policyGate.messagesList}}${l.none}{{/policyGate.messagesList}}`,
      ),
    );
  }
  if (copy.decision) {
    rows.push(
      row(
        l.decision,
        `{{#decision}}{{#approved}}${l.approved}{{/approved}}{{#rejected}}${l.rejected}{{/rejected}} ${l.by} {{decidedBy}} ${l.at} {{decidedAt}}{{/decision}}{{^decision}}{{status}}{{/decision}}`,
      ),
      row(l.comment, '{{#decision.comment}}{{decision.comment}}{{/decision.comment}}'),
      row(l.statusReason, '{{statusReason}}'),
    );
  }
  return [
    `<!doctype html><html lang="${lang}"><body style="font-family:sans-serif">`,
    `<p>${copy.lead}</p>`,
    `<table>${rows.join('')}</table>`,
    `<p><a href="{{approvalLink}}">${copy.closed ? l.viewText : l.link}</a></p>`,
    '</body></html>',
  ].join('\n');
}

/** The shared webhook payload; `summary` is the localised subject (static text must not contain `"` or `\`). */
function webhookBody(templateId: string, locale: Locale, summary: string): string {
  return [
    '{',
    `  "type": "${templateId}",`,
    `  "locale": "${locale}",`,
    `  "summary": "${summary}",`,
    '  "reason": "{{reason}}",',
    '  "kind": "{{kind}}",',
    '  "tenantId": "{{tenantId}}",',
    '  "runId": "{{runId}}",',
    '  "approvalId": "{{approvalId}}",',
    '  "parameters": { {{#parametersList}}"{{key}}": "{{value}}"{{^last}}, {{/last}}{{/parametersList}} },',
    '  "planHash": "{{planHash}}",',
    '  "stepIds": [{{#stepIdsList}}"{{value}}"{{^last}}, {{/last}}{{/stepIdsList}}],',
    '  "requiredGrants": [{{#requiredGrantsList}}"{{value}}"{{^last}}, {{/last}}{{/requiredGrantsList}}],',
    '  "requestedBy": "{{requestedBy}}",',
    '  "requestedAt": "{{requestedAt}}",',
    '  "expiresAt": {{#expiresAt}}"{{expiresAt}}"{{/expiresAt}}{{^expiresAt}}null{{/expiresAt}},',
    '  "status": {{#status}}"{{status}}"{{/status}}{{^status}}null{{/status}},',
    '  "statusReason": {{#statusReason}}"{{statusReason}}"{{/statusReason}}{{^statusReason}}null{{/statusReason}},',
    '  "policyGate": {{#policyGate}}{',
    '    "gateId": "{{gateId}}",',
    '    "parameters": { {{#parametersList}}"{{key}}": "{{value}}"{{^last}}, {{/last}}{{/parametersList}} },',
    '    "messages": [{{#messagesList}}"{{value}}"{{^last}}, {{/last}}{{/messagesList}}]',
    '  }{{/policyGate}}{{^policyGate}}null{{/policyGate}},',
    '  "decision": {{#decision}}{',
    '    "decision": "{{decision}}",',
    '    "decidedBy": "{{decidedBy}}",',
    '    "decidedAt": "{{decidedAt}}",',
    '    "comment": {{#comment}}"{{comment}}"{{/comment}}{{^comment}}null{{/comment}}',
    '  }{{/decision}}{{^decision}}null{{/decision}},',
    '  "approvalLink": "{{approvalLink}}"',
    '}',
  ].join('\n');
}

function buildDefaults(): NotifyTemplate[] {
  const templates: NotifyTemplate[] = [];
  for (const templateId of Object.values(DEFAULT_TEMPLATE_IDS)) {
    for (const locale of ['en-US', 'de-DE'] as const) {
      const copy = COPY[templateId]?.[locale];
      if (!copy) throw new Error(`missing default copy for ${templateId} ${locale}`);
      const labels = LABELS[locale];
      templates.push(
        {
          templateId,
          locale,
          channel: 'email',
          subject: copy.subject,
          text: emailText(copy, labels),
          html: emailHtml(copy, labels, locale),
        },
        { templateId, locale, channel: 'webhook', body: webhookBody(templateId, locale, copy.subject) },
      );
    }
  }
  return templates;
}

/** The built-in templates: 6 template ids × (email, webhook) × (`en-US`, `de-DE`). */
export const DEFAULT_TEMPLATES: readonly NotifyTemplate[] = Object.freeze(buildDefaults());
