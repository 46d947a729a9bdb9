/**
 * Sagas through `npm start`, black-box over HTTP: `Advisory.Published` in → the impact effect → one command per
 * image at the reference Gateway → its `Scan.Completed` events back into the ingress → the saga completed, visible
 * in the API and in the Web UI by `SagaName`; every command received once.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { commandIdOf } from '../../workflows/sagas/definitions.js';
import { eventually } from '../support/http-sinks.js';
import { advisoryPublished } from '../support/sagas.js';
import { startStack, stackEnv, stopStack, useStackSandbox } from '../support/stack.js';

const box = useStackSandbox('sagas');
const IMAGES = ['payments-api:3.8.2', 'auth-service:2.1.0', 'edge-gateway:1.9.0'];

describe('sagas through npm start', () => {
  it('advisory published → effect → Gateway commands → Scan.Completed events → saga completed', async () => {
    const stack = (box.current = await startStack(stackEnv(box.dataDir, box.ports)));
    const api = `http://127.0.0.1:${box.ports.api}`;
    const auth = { authorization: `Bearer ${stack.token}` };
    const correlationId = `e2e-${randomUUID().slice(0, 8)}`;
    const event = advisoryPublished('CVE-2023-44487', {}, { tenantId: 'local', correlationId });

    const posted = await fetch(`${api}/api/v1/events`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(event),
    });
    expect(posted.status).toBe(202);
    expect(await posted.json()).toMatchObject({
      results: [{ status: 'accepted', instances: [{ sagaName: 'advisory-impact-rescan', correlationId }] }],
    });

    const detail = await eventually(async () => {
      const res = await fetch(`${api}/api/v1/sagas/advisory-impact-rescan/${correlationId}`, { headers: auth });
      if (res.status !== 200) return undefined;
      const body = (await res.json()) as { instance: { status: string } };
      return body.instance.status === 'completed' ? body : undefined;
    }, 60_000);
    expect(detail).toMatchObject({
      instance: { status: 'completed', state: { summary: { impacted: 3, completed: 3 } } },
    });
    const timeline = (detail as unknown as { timeline: { eventType: string; outcome: string }[] }).timeline;
    expect(timeline.filter((e) => e.eventType === 'Scan.Completed' && e.outcome === 'applied')).toHaveLength(3);

    // The reference Gateway received each RequestRescan once.
    const received = (await (
      await fetch(`http://127.0.0.1:${box.ports.reference}/api/v1/commands/received`)
    ).json()) as Record<string, number>;
    for (const image of IMAGES) {
      const commandId = commandIdOf(
        { tenantId: 'local', sagaName: 'advisory-impact-rescan', correlationId },
        `rescan:${image}`,
      );
      expect(received[commandId]).toBe(1);
    }

    // The Web UI's own list API finds the instance by SagaName and CorrelationId.
    const query = encodeURIComponent(`SagaName="advisory-impact-rescan" AND CorrelationId="${correlationId}"`);
    const listed = await eventually(async () => {
      const res = await fetch(`http://127.0.0.1:${box.ports.ui}/api/v1/namespaces/default/workflows?query=${query}`);
      const body = (await res.json()) as { executions?: { execution: { workflowId: string } }[] };
      return body.executions?.length ? body.executions : undefined;
    }, 30_000);
    expect(listed[0]?.execution.workflowId).toBe(`saga/local/advisory-impact-rescan/${correlationId}`);

    expect(await stopStack(stack)).toBe(0);
    box.current = undefined;
  });
});
