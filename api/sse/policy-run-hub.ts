/**
 * Fans projection changes out to the SSE streams of this API process. Every replica LISTENs on the same
 * Postgres channel, so a change written by any worker reaches every replica's subscribers. The LISTEN
 * connection reconnects by itself; subscribers are told to re-read when it does, so nothing is missed.
 */
import type { Logger } from '../../core/logger.js';
import type { Pool, PoolClient } from '../../db/pool.js';
import { POLICY_RUN_CHANNEL } from '../../db/queries/policy-simulations.js';

type Listener = () => void;

/** Subscriptions to changes of individual runs. */
export class PolicyRunHub {
  private readonly listeners = new Map<string, Set<Listener>>();
  private client: PoolClient | undefined;
  private connecting: Promise<void> | undefined;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly logger: Logger,
  ) {}

  /** Calls `listener` whenever run `tenantId/runId` may have changed. Returns the unsubscribe function. */
  subscribe(tenantId: string, runId: string, listener: Listener): () => void {
    const key = `${tenantId}/${runId}`;
    let set = this.listeners.get(key);
    if (!set) this.listeners.set(key, (set = new Set()));
    set.add(listener);
    this.ensureListening();
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(key);
    };
  }

  /** Stops listening. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    if (client) {
      await client.query(`UNLISTEN ${POLICY_RUN_CHANNEL}`).catch(() => undefined);
      client.release();
    }
  }

  private ensureListening(): void {
    if (this.client || this.connecting || this.closed) return;
    this.connecting = this.connect().finally(() => (this.connecting = undefined));
  }

  private async connect(): Promise<void> {
    let client: PoolClient | undefined;
    try {
      client = await this.pool.connect();
      client.on('notification', (message) => {
        if (!message.payload) return;
        try {
          const { tenantId, runId } = JSON.parse(message.payload) as { tenantId: string; runId: string };
          this.listeners.get(`${tenantId}/${runId}`)?.forEach((listener) => listener());
        } catch (error) {
          this.logger.warn({ err: error }, 'malformed policy run notification');
        }
      });
      client.on('error', (error) => this.lost(error));
      await client.query(`LISTEN ${POLICY_RUN_CHANNEL}`);
      this.client = client;
      // Anything that changed while we were not listening is re-read by every subscriber.
      for (const set of this.listeners.values()) set.forEach((listener) => listener());
    } catch (error) {
      client?.release(error as Error);
      this.scheduleRetry(error);
    }
  }

  private lost(error: Error): void {
    const client = this.client;
    this.client = undefined;
    client?.release(error);
    this.scheduleRetry(error);
  }

  private scheduleRetry(error: unknown): void {
    if (this.closed) return;
    this.logger.warn({ err: error }, 'policy run LISTEN connection lost; retrying');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.ensureListening(), 1_000);
  }
}
