/** Files the tests write for the code under test to find. */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Writes an executable shell script at `path` (creating its folder) that runs `script`; returns `path`. */
export async function executable(path: string, script = 'exit 0'): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `#!/bin/sh\n${script}\n`);
  await chmod(path, 0o755);
  return path;
}
