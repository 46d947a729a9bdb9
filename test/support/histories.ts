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

/** Writes the handle's history as `<name>.json` when recording; a no-op otherwise. */
export async function recordHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1') return;
  const history = await handle.fetchHistory();
  await writeFile(`${HISTORIES_DIR}${name}.json`, `${historyToJSON(history)}\n`);
}
