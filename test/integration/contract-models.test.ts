import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FormatRegistry, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { contractFiles } from '../../api/schemas/contracts.js';
import { PackApprovalRequested, PackApprovalUpdated } from '../../workflows/pack-approval/definitions.js';
import { AggregateEvent, EffectCommand, EffectResult, GatewayCommand } from '../../workflows/sagas/definitions.js';

if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));
if (!FormatRegistry.Has('uri')) FormatRegistry.Set('uri', (v) => URL.canParse(v));

const root = fileURLToPath(new URL('../../', import.meta.url));
const goModule = join(root, 'docs/contracts/models/go');

/** The schemas behind the published JSON Schemas, by title (the name of their Go model). */
const SCHEMAS: Record<string, TSchema> = {
  AggregateEvent,
  EffectCommand,
  EffectResult,
  GatewayCommand,
  PackApprovalRequested,
  PackApprovalUpdated,
};

async function jsonFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.json'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** Every sample under samples/ that is an event of a published schema, as `<Title>=<path>`. */
async function sampleEvents(): Promise<string[]> {
  const samples: string[] = [];
  for (const path of await jsonFiles(join(root, 'samples'))) {
    const value: unknown = JSON.parse(await readFile(path, 'utf8'));
    for (const [title, schema] of Object.entries(SCHEMAS))
      if (Value.Check(schema, value)) samples.push(`${title}=${path}`);
  }
  return samples;
}

const goTest = (args: string[]) =>
  promisify(execFile)('go', ['test', '-count=1', '-v', './contracts', '-args', ...args], {
    cwd: goModule,
    maxBuffer: 16 * 1024 * 1024,
  });

describe('Go contract models', () => {
  it('names a schema of the published contracts for each model under test', () => {
    const titles = Object.entries(contractFiles())
      .filter(([name]) => name.endsWith('.schema.json'))
      .map(([, content]) => (JSON.parse(content) as { title: string }).title);
    expect(Object.keys(SCHEMAS).sort()).toEqual(titles.sort());
  });

  it('compile and round-trip every sample event of samples/ unchanged', async () => {
    const samples = await sampleEvents();
    // The Task Runner's events and the aggregates' events each have committed samples.
    for (const title of ['AggregateEvent', 'PackApprovalRequested', 'PackApprovalUpdated'])
      expect(
        samples.some((s) => s.startsWith(`${title}=`)),
        title,
      ).toBe(true);
    const { stdout } = await goTest(samples);
    for (const sample of samples) expect(stdout).toContain(`--- PASS: TestRoundTrip/${sample} `);
  });

  it('fail the round trip of an event read by the model of another schema', async () => {
    const sample = join(root, 'samples/pack-approvals/pack-approval-requested.json');
    const failure = await goTest([`PackApprovalUpdated=${sample}`]).then(
      () => undefined,
      (error: unknown) => error as { stdout: string },
    );
    expect(failure?.stdout).toContain(`--- FAIL: TestRoundTrip/PackApprovalUpdated=${sample} `);
    expect(failure?.stdout).toContain('marshalled back differently');
  });
});
