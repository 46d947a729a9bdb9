/** Replays every committed history against the current code, plus one negative control. */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { bundleWorkflowCode, Worker, type ReplayResult } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { beforeAll, describe, expect, it } from 'vitest';
import { HISTORIES_DIR, sanitizeHistory } from '../support/histories.js';
import { workflowBundle } from '../support/temporal.js';

interface Recorded {
  workflowId: string;
  workflowType: string;
  history: ReturnType<typeof historyFromJSON>;
}

let recorded: Recorded[];
beforeAll(async () => {
  const files = (await readdir(HISTORIES_DIR)).filter((f) => f.endsWith('.json')).sort();
  recorded = await Promise.all(
    files.map(async (file) => {
      const history = historyFromJSON(JSON.parse(await readFile(`${HISTORIES_DIR}${file}`, 'utf8')));
      const workflowType = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? '';
      return { workflowId: file.replace(/\.json$/, ''), workflowType, history };
    }),
  );
});

async function replay(
  bundle: Awaited<ReturnType<typeof workflowBundle>>,
  histories: Recorded[],
): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: bundle }, histories)) results.push(result);
  return results;
}

describe('replay of committed histories', () => {
  it('covers every workflow type the bundle exports', async () => {
    const exported = Object.keys(await import('../../workflows/index.js'));
    const types = new Set(recorded.map((r) => r.workflowType));
    expect(exported.filter((name) => !types.has(name))).toEqual([]);
  });

  it('holds nothing of the recording machine (identities, sticky queues, stack traces)', async () => {
    for (const file of (await readdir(HISTORIES_DIR)).filter((f) => f.endsWith('.json'))) {
      const text = await readFile(`${HISTORIES_DIR}${file}`, 'utf8');
      expect(JSON.stringify(sanitizeHistory(JSON.parse(text))), file).toBe(JSON.stringify(JSON.parse(text)));
    }
  });

  it('replays every history without a determinism error', async () => {
    const results = await replay(await workflowBundle(), recorded);
    expect(results.map((r) => r.workflowId)).toEqual(recorded.map((r) => r.workflowId));
    // Every failing history is named, not only the first.
    const failures = results
      .filter((r) => r.error !== undefined)
      .map((r) => `${r.workflowId}.json: ${r.error instanceof Error ? r.error.message : String(r.error)}`);
    expect(failures).toEqual([]);
  });

  it('negative control: an incompatible change of any workflow type is caught in each of its histories', async () => {
    const bundle = await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('./fixtures/timer-first-workflows.ts', import.meta.url)),
    });
    const results = await replay(bundle, recorded);
    const caught = results.filter((r) => r.error instanceof DeterminismViolationError).map((r) => r.workflowId);
    expect(caught).toEqual(recorded.map((r) => r.workflowId));
    const exported = Object.keys(await import('../../workflows/index.js')).sort();
    expect([...new Set(recorded.map((r) => r.workflowType))].sort()).toEqual(exported);
  });
});
