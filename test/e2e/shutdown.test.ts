/**
 * Ctrl-C on `npm start`, as a terminal delivers it: SIGINT to the whole process group — the `tsx` launcher and the
 * product process at once, and the launcher forwards it again when the product has not acknowledged it within
 * 30 ms — sometimes twice. Every time, the workers drain while Temporal and Postgres still run, then the API closes,
 * then the servers stop; the exit code is 0 and nothing of the tree is left.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, isListening } from '../support/ports.js';
import { startStack, stackEnv, stackLogLines, stopStack, type Stack } from '../support/stack.js';

let dataDir: string;
let ports: { api: number; temporal: number; ui: number; pg: number; engine: number };
let current: Stack | undefined;

interface Proc {
  pid: number;
  pgid: number;
  args: string;
}
function processes(): Proc[] {
  const out = execFileSync('ps', ['-eo', 'pid=,pgid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), pgid: Number(m[2]), args: m[3]! }));
}
/** The servers of the stack: their command lines name the data directory (postgres -D …, temporal --db-filename …). */
const serversOf = (dir: string) => processes().filter((p) => p.args.includes(dir) && !p.args.startsWith('ps '));
function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'stellaops-e2e-shutdown-'));
  await chmod(dataDir, 0o755);
  ports = {
    api: await freePort(),
    temporal: await freePort(),
    ui: await freePort(),
    pg: await freePort(),
    engine: await freePort(),
  };
});
afterAll(async () => {
  if (current) process.kill(-current.child.pid!, 'SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
});

// One Ctrl-C; then twice: at once (as the launcher forwards it), 20 ms and 300 ms apart (while the workers drain
// or the servers stop); then three times.
const signalPlans = [
  { repeat: 0, gapMs: 0 },
  { repeat: 1, gapMs: 0 },
  { repeat: 1, gapMs: 20 },
  { repeat: 1, gapMs: 300 },
  { repeat: 2, gapMs: 50 },
];

describe('Ctrl-C on npm start', () => {
  it('drains the workers, closes the API, then stops the servers, with exit code 0, five times in a row', async () => {
    const env = { ...stackEnv(dataDir, ports), LOG_LEVEL: 'info' };
    const timings: { ready: number; stop: number }[] = [];
    for (const [cycle, plan] of signalPlans.entries()) {
      const startedAt = Date.now();
      const stack = (current = await startStack(env));
      const readyAt = Date.now();
      const ready = await fetch(`http://127.0.0.1:${ports.api}/ready`);
      expect(ready.status, `cycle ${cycle}`).toBe(200);

      // Postgres and Temporal run outside the group a terminal signals.
      const servers = serversOf(dataDir);
      expect(servers.map((p) => p.args).join('\n'), `cycle ${cycle}`).toMatch(
        /postgres[\s\S]*temporal|temporal[\s\S]*postgres/,
      );
      for (const server of servers) expect(server.pgid, server.args).not.toBe(stack.child.pid);

      const stopAt = Date.now();
      const code = await stopStack(stack, plan);
      current = undefined;
      timings.push({ ready: readyAt - startedAt, stop: Date.now() - stopAt });
      const output = stack.output();
      expect(code, `cycle ${cycle} exit code:\n${output}`).toBe(0);

      const messages = stackLogLines(output).map((line) => line.msg);
      const tail = messages.slice(-12).join(' | ');
      const steps = ['workers drained', 'API closed', 'servers stopped', 'stopped'];
      const positions = steps.map((step) => messages.indexOf(step));
      for (const [i, step] of steps.entries()) {
        expect(
          messages.filter((m) => m === step),
          `cycle ${cycle}: "${step}" once`,
        ).toHaveLength(1);
        if (i > 0)
          expect(positions[i], `cycle ${cycle}: "${step}" after "${steps[i - 1]}": ${tail}`).toBeGreaterThan(
            positions[i - 1]!,
          );
      }
      const drainedAt = output.indexOf('"msg":"workers drained"');
      const beforeDrained = output.slice(0, drainedAt);
      expect(beforeDrained).not.toContain('terminating connection due to administrator command');
      expect(beforeDrained).not.toMatch(/dial error|connection refused|transport error/i);
      expect(output).not.toMatch(/second SIG[A-Z]+, exiting|killed by timeout/);
      expect(
        stackLogLines(output).filter((line) => line.level >= 50),
        `cycle ${cycle}: errors logged`,
      ).toEqual([]);

      // Nothing left: the group, the servers, their watchdogs, the ports.
      expect(groupExists(stack.child.pid!), `cycle ${cycle}: process group still there`).toBe(false);
      expect(serversOf(dataDir), `cycle ${cycle}`).toEqual([]);
      const watchdogs = processes().filter((p) =>
        servers.some((s) => p.args.includes(`stellaops-watchdog `) && p.args.includes(` ${s.pid} `)),
      );
      expect(watchdogs, `cycle ${cycle}`).toEqual([]);
      for (const port of Object.values(ports))
        expect(await isListening(port), `cycle ${cycle}: port ${port} open`).toBe(false);
    }
    console.log(`start → ready / stop (ms): ${timings.map((t) => `${t.ready}/${t.stop}`).join(', ')}`);
  }, 600_000);
});
