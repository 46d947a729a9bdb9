/** Routing rules and templates of a tenant (`notify.rules`, `notify.templates`). */
import type { NotifyRule } from '../../notify/routing.js';
import type { NotifyTemplate } from '../../notify/templates.js';
import type { Pool } from '../pool.js';

interface RuleRow {
  tenant_id: string;
  rule_id: string;
  name: string;
  predicate: string;
  channels: NotifyRule['channels'];
  template_id: string | null;
  enabled: boolean;
  priority: number;
}
const toRule = (r: RuleRow): NotifyRule => ({
  ruleId: r.rule_id,
  tenantId: r.tenant_id,
  name: r.name,
  predicate: r.predicate,
  channels: r.channels,
  ...(r.template_id ? { templateId: r.template_id } : {}),
  enabled: r.enabled,
  priority: r.priority,
});

/** A tenant's rules, in evaluation order. */
export async function listRules(pool: Pool, tenantId: string): Promise<NotifyRule[]> {
  const { rows } = await pool.query<RuleRow>(
    'SELECT * FROM notify.rules WHERE tenant_id = $1 ORDER BY priority, rule_id',
    [tenantId],
  );
  return rows.map(toRule);
}

/** One rule, or undefined. */
export async function getRule(pool: Pool, tenantId: string, ruleId: string): Promise<NotifyRule | undefined> {
  const { rows } = await pool.query<RuleRow>('SELECT * FROM notify.rules WHERE tenant_id = $1 AND rule_id = $2', [
    tenantId,
    ruleId,
  ]);
  return rows[0] ? toRule(rows[0]) : undefined;
}

/** Creates or replaces a rule. */
export async function upsertRule(pool: Pool, rule: NotifyRule, updatedBy: string): Promise<void> {
  await pool.query(
    `INSERT INTO notify.rules (tenant_id, rule_id, name, predicate, channels, template_id, enabled, priority, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (tenant_id, rule_id) DO UPDATE SET name = EXCLUDED.name, predicate = EXCLUDED.predicate,
       channels = EXCLUDED.channels, template_id = EXCLUDED.template_id, enabled = EXCLUDED.enabled,
       priority = EXCLUDED.priority, updated_by = EXCLUDED.updated_by, updated_at = now()`,
    [
      rule.tenantId,
      rule.ruleId,
      rule.name,
      rule.predicate,
      JSON.stringify(rule.channels),
      rule.templateId ?? null,
      rule.enabled,
      rule.priority,
      updatedBy,
    ],
  );
}

/** Deletes a rule; false when there was none. */
export async function deleteRule(pool: Pool, tenantId: string, ruleId: string): Promise<boolean> {
  const { rowCount } = await pool.query('DELETE FROM notify.rules WHERE tenant_id = $1 AND rule_id = $2', [
    tenantId,
    ruleId,
  ]);
  return (rowCount ?? 0) > 0;
}

interface TemplateRow {
  template_id: string;
  channel: 'email' | 'webhook';
  locale: string;
  subject: string | null;
  text_body: string | null;
  html_body: string | null;
  json_body: string | null;
}
const toTemplate = (r: TemplateRow): NotifyTemplate => ({
  templateId: r.template_id,
  channel: r.channel,
  locale: r.locale,
  ...(r.subject !== null ? { subject: r.subject } : {}),
  ...(r.text_body !== null ? { text: r.text_body } : {}),
  ...(r.html_body !== null ? { html: r.html_body } : {}),
  ...(r.json_body !== null ? { body: r.json_body } : {}),
});

/** A tenant's own templates (the built-in ones are the fallback). */
export async function listTemplates(pool: Pool, tenantId: string): Promise<NotifyTemplate[]> {
  const { rows } = await pool.query<TemplateRow>(
    'SELECT template_id, channel, locale, subject, text_body, html_body, json_body FROM notify.templates WHERE tenant_id = $1 ORDER BY template_id, channel, locale',
    [tenantId],
  );
  return rows.map(toTemplate);
}

/** Creates or replaces a template. */
export async function upsertTemplate(
  pool: Pool,
  tenantId: string,
  t: NotifyTemplate,
  updatedBy: string,
): Promise<void> {
  await pool.query(
    `INSERT INTO notify.templates (tenant_id, template_id, channel, locale, subject, text_body, html_body, json_body, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (tenant_id, template_id, channel, locale) DO UPDATE SET subject = EXCLUDED.subject,
       text_body = EXCLUDED.text_body, html_body = EXCLUDED.html_body, json_body = EXCLUDED.json_body,
       updated_by = EXCLUDED.updated_by, updated_at = now()`,
    [
      tenantId,
      t.templateId,
      t.channel,
      t.locale,
      t.subject ?? null,
      t.text ?? null,
      t.html ?? null,
      t.body ?? null,
      updatedBy,
    ],
  );
}

/** Deletes a template; false when there was none. */
export async function deleteTemplate(
  pool: Pool,
  tenantId: string,
  templateId: string,
  channel: string,
  locale: string,
): Promise<boolean> {
  const { rowCount } = await pool.query(
    'DELETE FROM notify.templates WHERE tenant_id = $1 AND template_id = $2 AND channel = $3 AND locale = $4',
    [tenantId, templateId, channel, locale],
  );
  return (rowCount ?? 0) > 0;
}
