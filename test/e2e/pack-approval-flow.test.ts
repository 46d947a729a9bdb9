/**
 * Pack approvals through `npm start`, black-box over HTTP: a signed event in → a mail in the local inbox →
 * approve on the page behind the mail's link → the Task Runner's resume callback received.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startReceiver } from '../support/http-sinks.js';
import { postSignedEvent, sampleEvent } from '../support/pack-approvals.js';
import { startStack, stackEnv, stopStack, useStackSandbox } from '../support/stack.js';

const box = useStackSandbox('pack');
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  receiver = await startReceiver(() => 200);
});
afterAll(async () => {
  await receiver?.close();
});

describe('pack approvals through npm start', () => {
  it('signed event → mail → approve via the page → resume callback', async () => {
    const { dataDir, ports } = box;
    const stack = (box.current = await startStack({
      ...stackEnv(dataDir, ports),
      PUBLIC_BASE_URL: `http://127.0.0.1:${ports.api}`,
    }));
    const secret = (await readFile(join(dataDir, 'auth', 'pack-events-secret'), 'utf8')).trim();

    const event = sampleEvent({
      tenantId: 'local',
      resumeCallback: { url: `${receiver.url}/resume`, token: 'tr-resume-secret-0123456789' },
    });
    const accepted = await postSignedEvent(`http://127.0.0.1:${ports.api}`, event, { token: stack.token, secret });
    expect(accepted.status).toBe(202);

    // The local inbox (no SMTP server configured) holds the approvers' mail.
    const mail = await eventually(async () => {
      const files = await readdir(join(dataDir, 'mail')).catch(() => [] as string[]);
      for (const file of files) {
        const text = await readFile(join(dataDir, 'mail', file), 'utf8');
        if (text.includes(event.runId)) return text.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
      }
      return undefined;
    }, 60_000);
    expect(mail).toContain('approvers@stellaops.local');
    expect(mail).not.toContain('tr-resume-secret');
    const link = new RegExp(`http://127\\.0\\.0\\.1:${ports.api}/approvals/[A-Za-z0-9_.-]+`).exec(mail)?.[0];
    expect(link).toBeDefined();

    const page = await fetch(link!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(event.planHash);
    const decided = await fetch(link!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ decision: 'approve', comment: 'LGTM' }).toString(),
    });
    expect(decided.status).toBe(200);
    expect((await decided.text()).toLowerCase()).toContain('approved');

    const callback = await eventually(() => receiver.received.find((r) => r.body.includes(event.runId)), 60_000);
    expect(callback.headers.authorization).toBe('Bearer tr-resume-secret-0123456789');
    expect(JSON.parse(callback.body)).toMatchObject({
      decision: 'approve',
      decidedBy: 'approvers@stellaops.local',
      comment: 'LGTM',
    });

    expect(await stopStack(stack)).toBe(0);
    box.current = undefined;
  });
});
