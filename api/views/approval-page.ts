/**
 * The approval page behind the links that mails carry (`/approvals/{token}`): complete HTML documents rendered by
 * pure functions. Every interpolated value is escaped; there is no script, so the page works under a strict CSP
 * (`default-src 'none'; style-src 'unsafe-inline'`) and the form works without JavaScript.
 */
import type { AckResult, ApprovalView } from '../../workflows/pack-approval/definitions.js';

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

const STYLE = `
:root { color-scheme: light dark; --muted: #6b7280; --border: #d1d5db; --accent: #1d4ed8; --danger: #b91c1c; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }
main { max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, monospace; }
ul { margin: 0; padding-left: 1.25rem; }
.state { display: inline-block; padding: 0 .5rem; border: 1px solid var(--border); border-radius: .25rem; }
.notice { padding: .75rem 1rem; border: 1px solid var(--border); border-radius: .25rem; }
.error { border-color: var(--danger); color: var(--danger); }
label { display: block; margin: 1rem 0 .25rem; }
textarea { width: 100%; min-height: 6rem; font: inherit; padding: .5rem; }
.actions { display: flex; gap: .75rem; margin-top: 1rem; }
button { font: inherit; padding: .5rem 1.25rem; border-radius: .25rem; border: 1px solid var(--border); cursor: pointer; }
button[value='approve'] { background: var(--accent); border-color: var(--accent); color: #fff; }
button[value='reject'] { background: transparent; border-color: var(--danger); color: var(--danger); }
footer { margin-top: 2rem; color: var(--muted); font-size: .875rem; }
`;

/** A complete document around `body`. */
function documentOf(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>${escapeHtml(title)} · StellaOps</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
<footer>StellaOps Workflows · pack approvals</footer>
</main>
</body>
</html>
`;
}

/** An ISO timestamp as `<time>` in UTC (the raw value when it is not a date). */
function time(iso: string): string {
  const date = new Date(iso);
  const text = Number.isNaN(date.getTime()) ? iso : `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return `<time datetime="${escapeHtml(iso)}">${escapeHtml(text)}</time>`;
}

const code = (value: string) => `<code>${escapeHtml(value)}</code>`;
const row = (label: string, html: string) => `<dt>${escapeHtml(label)}</dt><dd>${html}</dd>`;
const list = (items: string[], render: (item: string) => string = escapeHtml) =>
  items.length === 0 ? '<span>none</span>' : `<ul>${items.map((item) => `<li>${render(item)}</li>`).join('')}</ul>`;
const pairs = (values: Record<string, string>) => {
  const entries = Object.entries(values);
  return entries.length === 0
    ? '<p>none</p>'
    : `<dl>${entries.map(([key, value]) => row(key, escapeHtml(value))).join('')}</dl>`;
};

const DECISION_LABELS = { approve: 'Approved', reject: 'Rejected' } as const;
const RESUME_LABELS: Record<AckResult['resumeStatus'], string> = {
  pending: 'pending — the Task Runner is being notified',
  resumed: 'resumed — the Task Runner has been notified',
  failed: 'failed — the Task Runner could not be notified; operators have been alerted',
  'not-configured': 'not configured — the run has no resume callback',
};

function decisionRows(decision: AckResult): string {
  return [
    row('Decision', `<strong>${escapeHtml(DECISION_LABELS[decision.decision])}</strong>`),
    row('Decided by', escapeHtml(decision.decidedBy)),
    row('Decided at', time(decision.decidedAt)),
    ...(decision.comment ? [row('Comment', escapeHtml(decision.comment))] : []),
    row('Resume of the run', escapeHtml(RESUME_LABELS[decision.resumeStatus] ?? decision.resumeStatus)),
  ].join('');
}

/** Options of {@link renderApprovalPage}. */
export interface ApprovalPageOptions {
  /** The link token; the form posts back to `./{token}` (the page's own URL). */
  token: string;
  /** A problem with the last submission, shown above the form. */
  error?: string;
  /** Who the link was sent to (recorded as the decider). */
  recipient?: string;
}

/** The approval with its plan metadata and, while it is pending, the decision form. */
export function renderApprovalPage(view: ApprovalView, options: ApprovalPageOptions): string {
  const gate = view.policyGate;
  const pending = view.state === 'pending';
  const title = `${view.kind === 'pack.policy.gate' ? 'Policy gate' : 'Approval'} ${view.approvalId}`;
  const body = `<h1>${escapeHtml(title)}</h1>
${options.error ? `<p class="notice error" role="alert">${escapeHtml(options.error)}</p>` : ''}
<dl>
${row('State', `<span class="state">${escapeHtml(view.state)}</span>`)}
${row('Tenant', escapeHtml(view.tenantId))}
${row('Run', code(view.runId))}
${row('Approval', code(view.approvalId))}
${row('Plan hash', code(view.planHash))}
${row('Requested by', escapeHtml(view.requestedBy))}
${row('Requested at', time(view.requestedAt))}
${row('Expires at', view.expiresAt ? time(view.expiresAt) : 'never')}
${row('Required grants', list(view.requiredGrants, code))}
${row('Steps', list(view.stepIds, code))}
${view.lastReason ? row('Last update', escapeHtml(view.lastReason)) : ''}
</dl>
<h2>Message parameters</h2>
${pairs(view.message.parameters)}
${
  gate
    ? `<h2>Policy gate ${code(gate.gateId)}</h2>
<h3>Parameters</h3>
${pairs(gate.parameters)}
<h3>Messages</h3>
${list(gate.messages)}`
    : ''
}
${view.decision ? `<h2>Decision</h2>\n<dl>${decisionRows(view.decision)}</dl>` : ''}
${
  pending
    ? `<h2>Your decision</h2>
<form method="post" action="./${escapeHtml(encodeURIComponent(options.token))}">
${options.recipient ? `<p>You decide as <strong>${escapeHtml(options.recipient)}</strong>.</p>` : ''}
<label for="comment">Comment (optional)</label>
<textarea id="comment" name="comment" maxlength="2000"></textarea>
<div class="actions">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="reject">Reject</button>
</div>
</form>`
    : `<p class="notice">This ${escapeHtml(view.kind === 'pack.policy.gate' ? 'policy gate' : 'approval')} is ${escapeHtml(view.state)}; no decision can be taken here.</p>`
}`;
  return documentOf(title, body);
}

/** Options of {@link renderResultPage}. */
export interface ResultPageOptions {
  /** The link token, to link back to the approval page. */
  token: string;
  runId: string;
  approvalId: string;
}

/** After a decision: what was recorded and whether the run is being resumed. */
export function renderResultPage(result: AckResult, options: ResultPageOptions): string {
  const title = `${DECISION_LABELS[result.decision]}: ${options.approvalId}`;
  const body = `<h1>${escapeHtml(title)}</h1>
<p class="notice" role="status">Approval ${code(options.approvalId)} of run ${code(options.runId)} was <strong>${escapeHtml(
    DECISION_LABELS[result.decision].toLowerCase(),
  )}</strong>.</p>
<dl>
${decisionRows(result)}
</dl>
<p><a href="./${escapeHtml(encodeURIComponent(options.token))}">Back to the approval</a></p>`;
  return documentOf(title, body);
}

/** A problem page (invalid link, unknown approval, conflict, unavailable dependency…). */
export function renderErrorPage(status: number, title: string, message: string): string {
  const body = `<h1>${escapeHtml(title)}</h1>
<p class="notice error" role="alert">${escapeHtml(message)}</p>
<p>HTTP ${escapeHtml(status)}</p>`;
  return documentOf(title, body);
}
