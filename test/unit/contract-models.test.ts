import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { contractFiles } from '../../api/schemas/contracts.js';
import { CSHARP_MODELS, GO_MODELS, contractModelFiles } from '../../scripts/contracts.js';

describe('contract models', () => {
  it('commits the Go and C# models of the published schemas as generated (run `npm run contracts`)', async () => {
    const files = await contractModelFiles();
    expect(Object.keys(files).sort()).toEqual([CSHARP_MODELS, GO_MODELS].sort());
    for (const [name, content] of Object.entries(files)) {
      expect(await readFile(new URL(`../../docs/contracts/${name}`, import.meta.url), 'utf8'), name).toBe(content);
    }
  }, 30_000);

  it('has a model for every published schema, in both languages', async () => {
    const files = await contractModelFiles();
    const titles = Object.entries(contractFiles())
      .filter(([name]) => name.endsWith('.schema.json'))
      .map(([, content]) => (JSON.parse(content) as { title: string }).title);
    expect(titles.length).toBeGreaterThan(0);
    for (const title of titles) {
      expect(files[GO_MODELS], title).toContain(`func Unmarshal${title}(data []byte) (${title}, error)`);
      expect(files[CSHARP_MODELS], title).toContain(`public partial class ${title}\n`);
    }
  }, 30_000);
});
