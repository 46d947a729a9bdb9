import { readFile } from 'node:fs/promises';
import { FormatRegistry, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { contractFiles } from '../../api/schemas/contracts.js';
import { PackApprovalRequested, PackApprovalUpdated } from '../../api/schemas/pack-approvals.js';

if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));
if (!FormatRegistry.Has('uri')) FormatRegistry.Set('uri', (v) => URL.canParse(v));

const read = async (path: string): Promise<unknown> =>
  JSON.parse(await readFile(new URL(`../../${path}`, import.meta.url), 'utf8'));
const errors = (schema: TSchema, value: unknown) =>
  [...Value.Errors(schema, value)].map((e) => `${e.path} ${e.message}`);

describe('pack approval contract', () => {
  it('publishes docs/contracts/ generated from the schemas the API validates with (run `npm run contracts`)', async () => {
    for (const [name, content] of Object.entries(contractFiles())) {
      expect(await readFile(new URL(`../../docs/contracts/${name}`, import.meta.url), 'utf8'), name).toBe(content);
    }
  });

  it('accepts the committed sample events', async () => {
    expect(errors(PackApprovalRequested, await read('samples/pack-approvals/pack-approval-requested.json'))).toEqual(
      [],
    );
    expect(errors(PackApprovalRequested, await read('samples/pack-approvals/pack-policy-hold.json'))).toEqual([]);
    expect(errors(PackApprovalUpdated, await read('samples/pack-approvals/pack-approval-updated.json'))).toEqual([]);
  });

  it('refuses events that break the contract', async () => {
    const sample = (await read('samples/pack-approvals/pack-approval-requested.json')) as Record<string, unknown>;
    expect(errors(PackApprovalRequested, { ...sample, tenantId: '' })).not.toEqual([]);
    expect(errors(PackApprovalRequested, { ...sample, unknownField: 1 })).not.toEqual([]);
    expect(errors(PackApprovalUpdated, { ...sample, type: 'PackApprovalUpdated' })).not.toEqual([]); // no status
    expect(errors(PackApprovalRequested, { ...sample, requestedAt: 'yesterday' })).not.toEqual([]);
  });
});
