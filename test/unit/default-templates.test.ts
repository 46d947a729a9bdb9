import { describe, expect, it } from 'vitest';
import { DEFAULT_TEMPLATES, DEFAULT_TEMPLATE_IDS } from '../../notify/default-templates.js';
import { buildTemplateModel, renderEmail, renderWebhook, resolveTemplate } from '../../notify/templates.js';
import { packApprovalEvent } from '../support/fixtures.js';

const event = packApprovalEvent({
  message: {
    templateId: 'pack-approval.requested',
    parameters: { pack: 'payments-api', version: '4.2.1', environment: 'production' },
  },
});
const model = buildTemplateModel(event, { reason: 'requested', approvalLink: 'https://approvals.example.com/a/t' });
const template = (channel: 'email' | 'webhook', locale: string, id: string = DEFAULT_TEMPLATE_IDS.requested) =>
  resolveTemplate(DEFAULT_TEMPLATES, id, channel, locale, 'en-US')!;

describe('built-in templates', () => {
  it.each(['en-US', 'de-DE'])('show the event’s message parameters in every %s email', (locale) => {
    for (const id of Object.values(DEFAULT_TEMPLATE_IDS)) {
      const mail = renderEmail(template('email', locale, id), model);
      // Sorted by name, so every message lists them the same way.
      expect(mail.text).toContain('Details: environment=production, pack=payments-api, version=4.2.1');
      expect(mail.html).toContain('environment=production, pack=payments-api, version=4.2.1');
    }
  });

  it('say so when an event has no parameters', () => {
    const bare = buildTemplateModel(packApprovalEvent({ message: { templateId: 'x', parameters: {} } }), {
      reason: 'requested',
      approvalLink: 'https://approvals.example.com/a/t',
    });
    expect(renderEmail(template('email', 'en-US'), bare).text).toContain('Details: none');
    expect(renderEmail(template('email', 'de-DE'), bare).text).toContain('Details: keine');
  });

  it('carry the parameters in the webhook payload as an object', () => {
    expect(renderWebhook(template('webhook', 'en-US'), model)).toMatchObject({
      parameters: { pack: 'payments-api', version: '4.2.1', environment: 'production' },
    });
  });
});
