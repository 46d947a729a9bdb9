/**
 * `npm start` as a user runs it: a child process on free box.ports and a temporary data directory, driven over
 * HTTP. Ctrl-C (SIGINT to the process group) must leave nothing behind, and a second start finds its data. The first
 * start sends its traces to a loopback OTLP receiver (OTEL_EXPORTER_OTLP_ENDPOINT), as it would to a collector.
 */
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { embeddedDatabaseUrl } from '../../core/config.js';
import { startHttpReceiver } from '../support/http-sinks.js';
import { isListening } from '../support/ports.js';
import { startStack, stackEnv, useStackSandbox, stopStack, type Stack } from '../support/stack.js';

const box = useStackSandbox('start');

const env = () => stackEnv(box.dataDir, box.ports);
async function start(extra: NodeJS.ProcessEnv = {}): Promise<Stack> {
  box.current = await startStack({ ...env(), ...extra });
  return box.current;
}

/** Processes whose command line mentions the data directory (postgres -D …, temporal --db-filename …). */
function processesUsing(dir: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.includes(dir) && !line.includes('ps -eo'));
}

async function stop(stack: Stack): Promise<number | null> {
  const code = await stopStack(stack);
  box.current = undefined;
  return code;
}

const api = (path: string, init: RequestInit & { token?: string } = {}) =>
  fetch(`http://127.0.0.1:${box.ports.api}${path}`, {
    ...init,
    headers: {
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
  });

describe('npm start', () => {
  it('runs the whole product, answers deep readiness, shows runs by TenantId in the Web UI, stops cleanly', async () => {
    const collector = await startHttpReceiver(
      () => (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'),
    );
    const stack = await start({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SERVICE_NAME: 'e2e-start' });
    expect(stack.output()).toContain(`http://127.0.0.1:${box.ports.ui}/namespaces/default/workflows?query=TenantId`);

    const ready = await api('/ready?deep=true');
    expect(ready.status).toBe(200);

    const started = await api('/api/v1/self-checks', {
      method: 'POST',
      token: stack.token,
      body: JSON.stringify({ activityCount: 2 }),
    });
    expect(started.status).toBe(202);
    const startedBody = (await started.json()) as { checkId: string };
    const persisted = await api('/api/v1/self-checks', {
      method: 'POST',
      token: stack.token,
      body: JSON.stringify({ activityCount: 1 }),
    });
    expect(persisted.status).toBe(202);
    const persistedId = ((await persisted.json()) as { checkId: string }).checkId;

    // The Web UI is served, and its own list API filters runs by TenantId.
    const ui = await fetch(`http://127.0.0.1:${box.ports.ui}/`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toMatch(/<html/i);
    let listed: string[] = [];
    for (let i = 0; i < 50 && !listed.some((id) => id.endsWith(startedBody.checkId)); i++) {
      const query = encodeURIComponent('TenantId="local"');
      const res = await fetch(`http://127.0.0.1:${box.ports.ui}/api/v1/namespaces/default/workflows?query=${query}`);
      const body = (await res.json()) as { executions?: { execution: { workflowId: string } }[] };
      listed = (body.executions ?? []).map((e) => e.execution.workflowId);
      if (!listed.some((id) => id.endsWith(startedBody.checkId))) await new Promise((r) => setTimeout(r, 200));
    }
    expect(listed).toContain(`self-check/local/${startedBody.checkId}`);

    // A marker row written to Postgres must survive the restart.
    const client = new pg.Client({ connectionString: embeddedDatabaseUrl(box.ports.pg) });
    await client.connect();
    await client.query("INSERT INTO audit.events (tenant_id, event_type, subject) VALUES ('local', 'e2e.marker', $1)", [
      persistedId,
    ]);
    await client.end();

    // A policy simulation followed live over SSE to its `completed` event, then visible in the metrics and in
    // the Web UI's list filtered by TenantId.
    const sim = await api('/api/v1/scheduler/policies/simulations', {
      method: 'POST',
      token: stack.token,
      body: JSON.stringify({
        policyId: 'baseline-security',
        policyVersion: 3,
        inputs: { sbomSet: ['sbom-payments-api'] },
      }),
    });
    expect(sim.status).toBe(201);
    const { runId } = (await sim.json()) as { runId: string };
    const stream = await api(`/api/v1/scheduler/policies/simulations/${runId}/stream`, { token: stack.token });
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    const sse = await stream.text();
    expect(sse.match(/^event: completed$/gm)).toHaveLength(1);
    const completed = JSON.parse(/event: completed\ndata: (.*)/.exec(sse)![1]!) as { simulation: { status: string } };
    expect(completed.simulation.status).toBe('succeeded');
    const metrics = await api('/api/v1/scheduler/policies/simulations/metrics', { token: stack.token });
    expect(((await metrics.json()) as { latency: { samples: number } }).latency.samples).toBeGreaterThanOrEqual(1);
    let simulationListed = false;
    for (let i = 0; i < 50 && !simulationListed; i++) {
      const query = encodeURIComponent(`TenantId="local" AND PolicyRunId="${runId}"`);
      const res = await fetch(`http://127.0.0.1:${box.ports.ui}/api/v1/namespaces/default/workflows?query=${query}`);
      const body = (await res.json()) as { executions?: { execution: { workflowId: string } }[] };
      simulationListed = (body.executions ?? []).some(
        (e) => e.execution.workflowId === `policy-simulation/local/${runId}`,
      );
      if (!simulationListed) await new Promise((r) => setTimeout(r, 200));
    }
    expect(simulationListed).toBe(true);

    expect(await stop(stack)).toBe(0);
    // The spans were flushed by the shutdown at the latest: a request's, a workflow's and an activity's.
    await collector.close();
    const exported = collector.received.filter((r) => r.method === 'POST' && r.url === '/v1/traces');
    const spans = exported.map((r) => r.body).join('\n');
    expect(spans).toContain('e2e-start');
    for (const name of [
      'POST /api/v1/scheduler/policies/simulations',
      'RunWorkflow:selfCheckWorkflow',
      'RunActivity:evaluatePolicySimulation',
    ]) {
      expect(spans, name).toContain(name);
    }
    for (const port of Object.values(box.ports)) expect(await isListening(port), `port ${port} still open`).toBe(false);
    expect(processesUsing(box.dataDir)).toEqual([]);

    // Second start: same data directory, Temporal history and Postgres rows are still there.
    const again = await start();
    const read = await api(`/api/v1/self-checks/${persistedId}`, { token: again.token });
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ status: 'COMPLETED', result: { activitiesCompleted: 1 } });
    const client2 = new pg.Client({ connectionString: embeddedDatabaseUrl(box.ports.pg) });
    await client2.connect();
    const { rows } = await client2.query("SELECT subject FROM audit.events WHERE event_type = 'e2e.marker'");
    await client2.end();
    expect(rows).toEqual([{ subject: persistedId }]);

    expect(await stop(again)).toBe(0);
    expect(processesUsing(box.dataDir)).toEqual([]);
  });
});
