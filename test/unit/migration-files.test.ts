import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MigrationError, readMigrations } from '../../db/migrate.js';

const dirs: string[] = [];
async function folder(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'stellaops-migrations-'));
  dirs.push(dir);
  for (const [name, sql] of Object.entries(files)) await writeFile(join(dir, name), sql);
  return dir;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('readMigrations', () => {
  it('reads the committed migrations in order with checksums', async () => {
    const migrations = await readMigrations();
    expect(migrations.length).toBeGreaterThan(0);
    expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => i + 1));
    for (const m of migrations) expect(m.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a gap in the sequence', async () => {
    const dir = await folder({ '0001_a.sql': 'SELECT 1;', '0003_c.sql': 'SELECT 1;' });
    await expect(readMigrations(dir)).rejects.toThrow(MigrationError);
  });

  it('refuses a badly named file', async () => {
    const dir = await folder({ '1_a.sql': 'SELECT 1;' });
    await expect(readMigrations(dir)).rejects.toThrow(/NNNN_name\.sql/);
  });
});
