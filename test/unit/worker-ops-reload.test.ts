/** What a reload reports as changed: providers (or any named settings) added, removed and changed. */
import { describe, expect, it } from 'vitest';
import { nameChanges } from '../../workers/ops-server.js';

describe('nameChanges', () => {
  it('names what was added, removed and changed, each sorted, and nothing for an equal map', () => {
    const before = new Map<string, unknown>([
      ['b.kept', { url: 'https://b.example.com', timeoutMs: 1000 }],
      ['a.moved', { url: 'https://a.example.com' }],
      ['z.dropped', { url: 'https://z.example.com' }],
    ]);
    const after = new Map<string, unknown>([
      ['c.new', { url: 'https://c.example.com' }],
      ['b.kept', { url: 'https://b.example.com', timeoutMs: 1000 }],
      ['a.moved', { url: 'https://a2.example.com' }],
      ['aa.new', {}],
    ]);
    expect(nameChanges(before, after)).toEqual({
      added: ['aa.new', 'c.new'],
      removed: ['z.dropped'],
      changed: ['a.moved'],
    });
    expect(nameChanges(before, new Map(before))).toEqual({ added: [], removed: [], changed: [] });
  });

  it('sorts each list whatever order the maps hold the names in', () => {
    const before = new Map<string, unknown>([
      ['z.changed', 1],
      ['y.removed', 1],
      ['a.changed', 1],
      ['b.removed', 1],
    ]);
    const after = new Map<string, unknown>([
      ['z.changed', 2],
      ['x.added', 1],
      ['a.changed', 2],
      ['c.added', 1],
    ]);
    expect(nameChanges(before, after)).toEqual({
      added: ['c.added', 'x.added'],
      removed: ['b.removed', 'y.removed'],
      changed: ['a.changed', 'z.changed'],
    });
  });

  it('sees a change in a nested setting', () => {
    const before = new Map([['p', { retry: { maximumAttempts: 3 } }]]);
    const after = new Map([['p', { retry: { maximumAttempts: 4 } }]]);
    expect(nameChanges(before, after).changed).toEqual(['p']);
  });
});
