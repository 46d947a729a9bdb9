/**
 * Ctrl-C on `npm start`, as a terminal delivers it: SIGINT to the whole process group — the product process (`npm
 * start` runs it as one process, `node --import tsx`) — sometimes twice or three times, as a terminal or a launcher
 * that relays signals (the `tsx` CLI) delivers it. Every time, the workers drain while Temporal and Postgres still
 * run, then the API closes, then the servers stop; the exit code is 0 and nothing of the tree is left.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isListening } from '../support/ports.js';
import { spawnGroup, startStack, stackEnv, useStackSandbox, stackLogLines, stopStack } from '../support/stack.js';

const box = useStackSandbox('shutdown');

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
    const env = { ...stackEnv(box.dataDir, box.ports), LOG_LEVEL: 'info' };
    const timings: { ready: number; stop: number }[] = [];
    for (const [cycle, plan] of signalPlans.entries()) {
      const startedAt = Date.now();
      const stack = (box.current = await startStack(env));
      const readyAt = Date.now();
      const ready = await fetch(`http://127.0.0.1:${box.ports.api}/ready`);
      expect(ready.status, `cycle ${cycle}`).toBe(200);

      // Postgres and Temporal run outside the group a terminal signals.
      const servers = serversOf(box.dataDir);
      expect(servers.map((p) => p.args).join('\n'), `cycle ${cycle}`).toMatch(
        /postgres[\s\S]*temporal|temporal[\s\S]*postgres/,
      );
      for (const server of servers) expect(server.pgid, server.args).not.toBe(stack.child.pid);

      const stopAt = Date.now();
      const code = await stopStack(stack, plan);
      box.current = undefined;
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

      // Nothing left: the group, the servers, their watchdogs, the box.ports.
      expect(groupExists(stack.child.pid!), `cycle ${cycle}: process group still there`).toBe(false);
      expect(serversOf(box.dataDir), `cycle ${cycle}`).toEqual([]);
      const watchdogs = processes().filter((p) =>
        servers.some((s) => p.args.includes(`stellaops-watchdog `) && p.args.includes(` ${s.pid} `)),
      );
      expect(watchdogs, `cycle ${cycle}`).toEqual([]);
      for (const port of Object.values(box.ports))
        expect(await isListening(port), `cycle ${cycle}: port ${port} open`).toBe(false);
    }
    console.log(`start → ready / stop (ms): ${timings.map((t) => `${t.ready}/${t.stop}`).join(', ')}`);
  }, 600_000);
});

describe('SIGKILL of npm start', () => {
  it('leaves no server behind: their watchdogs stop them', async () => {
    const stack = (box.current = await startStack(stackEnv(box.dataDir, box.ports)));
    const servers = serversOf(box.dataDir);
    expect(servers.length).toBeGreaterThanOrEqual(2);
    process.kill(-stack.child.pid!, 'SIGKILL');
    await stack.exited;
    box.current = undefined;
    const deadline = Date.now() + 30_000;
    while (serversOf(box.dataDir).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(serversOf(box.dataDir)).toEqual([]);
    for (const port of Object.values(box.ports)) expect(await isListening(port), `port ${port} open`).toBe(false);
  }, 180_000);
});

const FIXTURE = fileURLToPath(new URL('fixtures/shutdown-steps.ts', import.meta.url));
const TSX_CLI = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url));

/** Runs the fixture under the tsx launcher in its own group, sends the group SIGINT three times, returns the end. */
async function interruptFixture(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const { child, output, exited } = spawnGroup([TSX_CLI, FIXTURE], { ...process.env, ...env });
  while (!output().includes('ready')) await new Promise((r) => setTimeout(r, 50));
  for (const gapMs of [0, 0, 20]) {
    await new Promise((r) => setTimeout(r, gapMs));
    process.kill(-child.pid!, 'SIGINT');
  }
  return { code: await exited, output: output() };
}

describe('the shutdown handler under the tsx launcher', () => {
  it('runs its steps once, in order, and exits 0 however many signals arrive', async () => {
    const { code, output } = await interruptFixture({ STEP_MS: '300' });
    expect(code, output).toBe(0);
    expect(
      stackLogLines(output)
        .map((line) => line.msg)
        .filter((msg) => /done|stopped/.test(msg)),
    ).toEqual(['first done', 'second done', 'stopped']);
    expect(output).toContain('already stopping, signal ignored');
  }, 30_000);

  it('exits 1 after its deadline, naming the step that did not finish', async () => {
    const { code, output } = await interruptFixture({ HANG: '1', DEADLINE_MS: '1500' });
    expect(code, output).toBe(1);
    expect(output).toContain('first done');
    expect(output).toContain('shutdown did not finish within 1500 ms (still stopping the second), exiting');
    expect(output).not.toContain('"msg":"stopped"');
  }, 30_000);
});
