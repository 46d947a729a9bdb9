/**
 * `npm run contracts`: writes the published contracts (pack-approval events, saga events, effect and Gateway
 * commands, their ingestion endpoints) to docs/contracts/ from the same TypeBox schemas the API validates with, and
 * the Go and C# models of its JSON Schemas to docs/contracts/models/ (quicktype). Unit tests fail when the committed
 * files are out of date.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FetchingJSONSchemaStore, InputData, JSONSchemaInput, type LanguageName, quicktype } from 'quicktype-core';
import { contractFiles } from '../api/schemas/contracts.js';

/** The Go package of the models, relative to docs/contracts/ (its go.mod and round-trip test are committed beside). */
export const GO_MODELS = 'models/go/contracts/contracts.go';
/** The C# models (System.Text.Json), relative to docs/contracts/. */
export const CSHARP_MODELS = 'models/csharp/Contracts.cs';

/** Every published JSON Schema, by file name in name order, so the models come out the same on every run. */
function publishedSchemas(): [string, string][] {
  return Object.entries(contractFiles())
    .filter(([name]) => name.endsWith('.schema.json'))
    .sort(([a], [b]) => a.localeCompare(b));
}

async function render(lang: LanguageName, rendererOptions: Record<string, string>): Promise<string> {
  const input = new JSONSchemaInput(new FetchingJSONSchemaStore());
  for (const [, content] of publishedSchemas()) {
    // The schema's title names its top-level type (AggregateEvent, PackApprovalRequested, …).
    const { title } = JSON.parse(content) as { title: string };
    await input.addSource({ name: title, schema: content });
  }
  const inputData = new InputData();
  inputData.addInput(input);
  const { lines } = await quicktype({ inputData, lang, rendererOptions });
  // quicktype pads comment lines of aligned struct fields with spaces; trailing blanks carry nothing.
  return `${lines.map((line) => line.trimEnd()).join('\n')}\n`;
}

/** The Go and C# models of the published JSON Schemas, by path relative to docs/contracts/. */
export async function contractModelFiles(): Promise<Record<string, string>> {
  return {
    [GO_MODELS]: await render('go', { package: 'contracts' }),
    [CSHARP_MODELS]: await render('csharp', { namespace: 'StellaOps.Contracts', framework: 'SystemTextJson' }),
  };
}

async function main(): Promise<void> {
  const docs = new URL('../docs/contracts/', import.meta.url);
  for (const [name, content] of Object.entries({ ...contractFiles(), ...(await contractModelFiles()) })) {
    const target = new URL(name, docs);
    await mkdir(dirname(fileURLToPath(target)), { recursive: true });
    await writeFile(target, content);
    console.log(`docs/contracts/${name}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
