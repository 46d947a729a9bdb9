/** The Runner's settings: worker modes and their queues, the JetStream bridge and the egress. */
import { describe, expect, it } from 'vitest';
import { loadConfig, WORKER_MODE_QUEUES } from '../../core/config.js';
import { configProblems } from '../support/config.js';

describe('WORKER_MODE', () => {
  it('maps each mode onto its task queues and the bridge', () => {
    const saga = loadConfig({ WORKER_MODE: 'saga' });
    expect(saga.worker.queues).toEqual(['policy-simulation', 'pack-approval', 'saga']);
    expect(saga.nats.bridge.enabled).toBe(true);
    const effect = loadConfig({ WORKER_MODE: 'effect' });
    expect(effect.worker.queues).toEqual(['effects']);
    expect(effect.nats.bridge.enabled).toBe(false);
    const combined = loadConfig({ WORKER_MODE: 'combined' });
    expect(combined.worker.queues).toEqual(['policy-simulation', 'pack-approval', 'saga', 'effects']);
    expect(combined.nats.bridge.enabled).toBe(true);
    expect(loadConfig({}).worker.mode).toBe('combined');
  });

  it('refuses an unknown mode, naming the valid ones', () => {
    expect(configProblems({ WORKER_MODE: 'scheduler' })).toEqual([
      'WORKER_MODE must be one of saga, effect, combined (got "scheduler")',
    ]);
  });

  it('lets WORKER_QUEUES narrow the mode, and refuses a queue the mode does not serve', () => {
    expect(loadConfig({ WORKER_MODE: 'saga', WORKER_QUEUES: 'saga' }).worker.queues).toEqual(['saga']);
    expect(configProblems({ WORKER_MODE: 'effect', WORKER_QUEUES: 'effects,saga' })).toEqual([
      'WORKER_QUEUES lists saga, which WORKER_MODE=effect does not serve (its queues: effects)',
    ]);
    expect(WORKER_MODE_QUEUES.effect).toEqual(['effects']);
    expect(configProblems({ WORKER_MODE: 'effect', WORKER_QUEUES: 'saga,pack-approval' })).toEqual([
      'WORKER_QUEUES lists saga, pack-approval, which WORKER_MODE=effect does not serve (its queues: effects)',
    ]);
    expect(configProblems({ WORKER_MODE: 'saga', WORKER_QUEUES: 'saga,effects' })).toEqual([
      'WORKER_QUEUES lists effects, which WORKER_MODE=saga does not serve ' +
        '(its queues: policy-simulation, pack-approval, saga)',
    ]);
  });
});

describe('the JetStream bridge', () => {
  it('runs by default in the modes that host sagas, and can be turned off', () => {
    expect(loadConfig({ NATS_BRIDGE: 'false' }).nats.bridge.enabled).toBe(false);
    expect(loadConfig({ NATS_BRIDGE: 'true', WORKER_MODE: 'saga' }).nats.bridge.enabled).toBe(true);
  });

  it('refuses the bridge in an effect worker, which hosts no sagas', () => {
    expect(configProblems({ NATS_BRIDGE: 'true', WORKER_MODE: 'effect' })).toEqual([
      'NATS_BRIDGE=true needs WORKER_MODE saga or combined (an effect worker hosts no sagas)',
    ]);
  });

  it('reads the consumer settings within their ranges', () => {
    const { bridge } = loadConfig({
      NATS_BRIDGE_DURABLE: 'runner-eu',
      NATS_BRIDGE_MAX_ACK_PENDING: '64',
      NATS_BRIDGE_ACK_WAIT_SECONDS: '5',
      NATS_BRIDGE_MAX_DELIVER: '3',
      NATS_BRIDGE_BATCH: '10',
    }).nats;
    expect(bridge).toEqual({
      enabled: true,
      durable: 'runner-eu',
      tenants: [],
      maxAckPending: 64,
      ackWaitSeconds: 5,
      maxDeliver: 3,
      batchSize: 10,
    });
    expect(configProblems({ NATS_BRIDGE_MAX_DELIVER: '0', NATS_BRIDGE_DURABLE: 'a.b' })).toEqual([
      `NATS_BRIDGE_DURABLE must be 1 to 255 letters, digits, '-' or '_' (got "a.b")`,
      'NATS_BRIDGE_MAX_DELIVER must be an integer between 1 and 1000 (got "0")',
    ]);
  });

  it('shards by tenant only with a durable consumer of its own, and only over tenant ids', () => {
    expect(
      loadConfig({ NATS_BRIDGE_TENANTS: 'acme, eu.globex', NATS_BRIDGE_DURABLE: 'shard-1' }).nats.bridge.tenants,
    ).toEqual(['acme', 'eu.globex']);
    expect(configProblems({ NATS_BRIDGE_TENANTS: 'acme' })).toEqual([
      'NATS_BRIDGE_TENANTS needs its own NATS_BRIDGE_DURABLE per shard',
    ]);
    expect(configProblems({ NATS_BRIDGE_TENANTS: 'acme,a*b', NATS_BRIDGE_DURABLE: 'shard-1' })).toEqual([
      'NATS_BRIDGE_TENANTS must list tenant ids (got "a*b")',
    ]);
  });
});

describe('the two streams', () => {
  it('refuses subjects both streams capture, a wildcard token against a literal one too, with every other problem', () => {
    expect(
      configProblems({
        NATS_AGGREGATE_SUBJECTS: 'aggregate.>,shared.x',
        NATS_WORKFLOW_SUBJECTS: 'workflow.>,shared.*',
      }),
    ).toEqual([
      'NATS_AGGREGATE_SUBJECTS must list filters of the form {prefix}.> (events are published on ' +
        '{prefix}.{tenant}.{aggregateType}.{eventType}; got "shared.x")',
      'NATS_AGGREGATE_SUBJECTS and NATS_WORKFLOW_SUBJECTS must not overlap ("shared.x" and "shared.*")',
    ]);
  });
});

describe('the egress', () => {
  it('publishes by default, under a {prefix}.> filter of the workflow stream', () => {
    expect(loadConfig({}).nats.egress).toBe(true);
    expect(loadConfig({ NATS_EGRESS: 'false', NATS_WORKFLOW_SUBJECTS: 'workflow.events' }).nats.egress).toBe(false);
    expect(configProblems({ NATS_WORKFLOW_SUBJECTS: 'workflow.events' })).toEqual([
      'NATS_WORKFLOW_SUBJECTS must include a filter of the form {prefix}.> for the egress to publish under ' +
        '(or set NATS_EGRESS=false)',
    ]);
  });

  it('reports a malformed workflow filter once, not also as missing the {prefix}.> of the egress', () => {
    expect(configProblems({ NATS_WORKFLOW_SUBJECTS: 'workflow.events,workflow..x' })).toEqual([
      'NATS_WORKFLOW_SUBJECTS must list NATS subject filters: "workflow..x" has an empty token',
    ]);
  });
});

describe('the operations port', () => {
  it('listens on loopback port 9464 by default; 0 picks a free port', () => {
    expect(loadConfig({}).worker).toMatchObject({ opsHost: '127.0.0.1', opsPort: 9464, shutdownGraceSeconds: 20 });
    expect(loadConfig({ WORKER_OPS_PORT: '0', WORKER_OPS_HOST: '0.0.0.0' }).worker).toMatchObject({
      opsHost: '0.0.0.0',
      opsPort: 0,
    });
    expect(configProblems({ WORKER_SHUTDOWN_GRACE_SECONDS: '0' })).toEqual([
      'WORKER_SHUTDOWN_GRACE_SECONDS must be an integer between 1 and 3600 (got "0")',
    ]);
  });
});
