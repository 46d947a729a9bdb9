/**
 * `npm run histories:record` runs the workflow tests with RECORD_HISTORIES=1: scenarios that call
 * {@link recordHistory} then write their histories to test/replay/histories/, which the replay tests check
 * every later change against.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';

/** Folder of the committed histories. */
export const HISTORIES_DIR = fileURLToPath(new URL('../replay/histories/', import.meta.url));

/** Identity written in place of the recording worker's `pid@host`. */
export const RECORDER_IDENTITY = 'history-recorder';

/**
 * Removes what describes the recording machine rather than the workflow: worker identities and sticky task queue
 * names (`pid@host…`) and failure stack traces (absolute paths). Replay reads none of them.
 */
export function sanitizeHistory(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sanitizeHistory);
  if (value === null || typeof value !== 'object') return value;
  if ((value as { kind?: unknown }).kind === 'TASK_QUEUE_KIND_STICKY')
    return { ...value, name: `${RECORDER_IDENTITY}-sticky` };
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => {
      if (key === 'identity' && typeof v === 'string') return [key, RECORDER_IDENTITY];
      if (key === 'stackTrace' && typeof v === 'string') return [key, ''];
      return [key, sanitizeHistory(v)];
    }),
  );
}

/**
 * Writes the handle's (sanitized) history as `<name>.json` in `dir` (a folder path ending in `/`, the committed
 * histories by default) when recording; a no-op otherwise.
 */
export async function recordHistory(handle: WorkflowHandle, name: string, dir: string = HISTORIES_DIR): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1') return;
  const history = JSON.parse(historyToJSON(await handle.fetchHistory())) as unknown;
  await writeFile(`${dir}${name}.json`, `${JSON.stringify(sanitizeHistory(history), null, 2)}\n`);
}
