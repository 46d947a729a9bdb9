/**
 * `npm run contracts`: writes the published contracts (pack-approval events, saga events, effect and Gateway
 * commands, their ingestion endpoints) to docs/contracts/ from the same TypeBox schemas the API validates with. A unit test fails when the committed files are out of date.
 */
import { writeFile } from 'node:fs/promises';
import { contractFiles } from '../api/schemas/contracts.js';

for (const [name, content] of Object.entries(contractFiles())) {
  await writeFile(new URL(`../docs/contracts/${name}`, import.meta.url), content);
  console.log(`docs/contracts/${name}`);
}
