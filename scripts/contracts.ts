/**
 * `npm run contracts`: writes the published event contract of pack approvals to docs/contracts/ from the same
 * TypeBox schemas the API validates with. A unit test fails when the committed files are out of date.
 */
import { writeFile } from 'node:fs/promises';
import { contractFiles } from '../api/schemas/contracts.js';

for (const [name, content] of Object.entries(contractFiles())) {
  await writeFile(new URL(`../docs/contracts/${name}`, import.meta.url), content);
  console.log(`docs/contracts/${name}`);
}
