import { describe, expect, it } from 'vitest';
import { eventToPost } from '../../scripts/pack-event.js';

const sample = {
  eventId: 'evt-1',
  runId: 'run-1',
  tenantId: 'local',
  requestedAt: '2026-01-01T00:00:00Z',
  expiresAt: '2026-01-02T00:00:00Z',
  resumeCallback: { url: 'https://task-runner.example.com/api/v1/runs/run-1/resume', token: 'tr-token' },
};

describe('npm run pack-event', () => {
  it('posts a sample as it is without --fresh', () => {
    expect(eventToPost(sample, { fresh: false })).toBe(sample);
  });

  it('drops the sample’s remote resume callback with --fresh, so no worker retries a host that does not exist', () => {
    const event = eventToPost(sample, { fresh: true });
    expect(event).not.toHaveProperty('resumeCallback');
    expect(event.eventId).not.toBe('evt-1');
    expect(event.runId).not.toBe('run-1');
    expect(event.tenantId).toBe('local');
  });

  it('points the callback where --callback says, keeping the sample’s token', () => {
    expect(eventToPost(sample, { fresh: true, callback: 'http://127.0.0.1:4000/resume' }).resumeCallback).toEqual({
      url: 'http://127.0.0.1:4000/resume',
      token: 'tr-token',
    });
    expect(eventToPost(sample, { fresh: false, callback: 'http://127.0.0.1:4000/resume' })).toMatchObject({
      eventId: 'evt-1',
      resumeCallback: { url: 'http://127.0.0.1:4000/resume', token: 'tr-token' },
    });
  });
});
