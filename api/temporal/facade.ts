/**
 * The API's one long-lived Temporal client. The connection is lazy: the API starts (and answers 503) while
 * Temporal is down, and the gRPC channel reconnects by itself when it is back.
 */
import { Client, Connection, type WorkflowClientInterceptor } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { withTlsDiagnosis, type TemporalConnectionOptions } from '../../core/temporal-connection.js';

/** Deadline of an API-initiated Temporal call; past it the request answers 503. */
export const TEMPORAL_CALL_DEADLINE_MS = 5_000;

/** What the API needs from Temporal. */
export interface TemporalFacade {
  client: Client;
  connection: Connection;
  namespace: string;
  address: string;
  /** Runs `fn` with a deadline so an unreachable server fails fast instead of hanging the request. */
  withDeadline<T>(fn: () => Promise<T>, ms?: number): Promise<T>;
  /** Resolves when the frontend answers within `ms`. */
  ping(ms?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Creates the facade over a lazy connection to `address`, with the TLS, API key and metadata of `options` (the
 * configuration's `temporalConnectionOf`), the client interceptors and the data converter given.
 */
export function createTemporalFacade(
  options: TemporalConnectionOptions & {
    namespace: string;
    /** The client's workflow interceptors (tracing's, when it is on); none by default. */
    interceptors?: WorkflowClientInterceptor[] | undefined;
    /** The payload codec and failure converter (`dataConverterOf`); the SDK's plain JSON when undefined. */
    dataConverter?: DataConverter | undefined;
  },
): TemporalFacade {
  const { namespace: _namespace, interceptors, dataConverter, ...connectionOptions } = options;
  const connection = Connection.lazy(connectionOptions);
  const client = new Client({
    connection,
    namespace: options.namespace,
    ...(interceptors?.length && { interceptors: { workflow: interceptors } }),
    ...(dataConverter && { dataConverter }),
  });
  const withDeadline = <T>(fn: () => Promise<T>, ms = TEMPORAL_CALL_DEADLINE_MS) =>
    connection.withDeadline(Date.now() + ms, fn);
  return {
    client,
    connection,
    namespace: options.namespace,
    address: options.address,
    withDeadline,
    async ping(ms = 2_000) {
      // A refused TLS handshake is reported as a missed deadline; /ready should say what is wrong.
      await withTlsDiagnosis(connectionOptions, () =>
        withDeadline(() => connection.workflowService.getSystemInfo({}), ms),
      );
    },
    async close() {
      await connection.close();
    },
  };
}
