/** Replays committed histories of every workflow type against the current code, plus one negative control. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { bundleWorkflowCode, Worker, type ReplayResult } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { describe, expect, it } from 'vitest';
import { workflowBundle } from '../support/temporal.js';
import { historyPath, REPLAY_SCENARIOS } from './scenarios.js';

async function histories() {
  return Promise.all(
    REPLAY_SCENARIOS.map(async (scenario) => ({
      workflowId: `replay/${scenario.name}`,
      history: historyFromJSON(JSON.parse(await readFile(historyPath(scenario.name), 'utf8'))),
    })),
  );
}

async function replayAll(bundle: Awaited<ReturnType<typeof workflowBundle>>): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: bundle }, await histories()))
    results.push(result);
  return results;
}

describe('replay of committed histories', () => {
  it('covers every workflow type the bundle exports', async () => {
    const exported = Object.keys(await import('../../workflows/index.js'));
    const recorded = new Set(REPLAY_SCENARIOS.map((s) => s.workflowType));
    expect(exported.filter((name) => !recorded.has(name))).toEqual([]);
  });

  it('replays every history without a determinism error', async () => {
    const results = await replayAll(await workflowBundle());
    expect(results).toHaveLength(REPLAY_SCENARIOS.length);
    for (const result of results)
      expect({ id: result.workflowId, error: result.error }).toEqual({ id: result.workflowId, error: undefined });
  });

  it('negative control: an incompatible change is caught', async () => {
    const bundle = await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('./fixtures/incompatible-workflows.ts', import.meta.url)),
    });
    const results = await replayAll(bundle);
    const failed = results.filter((r) => r.error instanceof DeterminismViolationError).map((r) => r.workflowId);
    expect(failed).toEqual(REPLAY_SCENARIOS.map((s) => `replay/${s.name}`));
  });
});
