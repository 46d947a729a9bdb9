import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { createSelfCheckActivities } from '../../activities/self-check/index.js';

describe('echoSelfCheck', () => {
  it('echoes the sequence number and names the task queue that ran it', async () => {
    const env = new MockActivityEnvironment({ taskQueue: 'effects' });
    const { echoSelfCheck } = createSelfCheckActivities();
    expect(await env.run(echoSelfCheck, { sequence: 7 })).toEqual({ sequence: 7, taskQueue: 'effects' });
  });
});
