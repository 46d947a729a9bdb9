/**
 * The reference Gateway: `POST /api/v1/commands` takes a `GatewayCommand`, deduplicates it by (tenant, commandId),
 * applies it to an in-memory aggregate and emits the resulting aggregate events to the ingress, so that a saga's
 * commands cause the events it waits for. One aggregate type, `Scan` (id = image id):
 *
 * - `RequestRescan {imageId, advisoryId}` → 202; emits `Scan.Requested`, then after the scan delay
 *   `Scan.Completed {imageId, advisoryId, findings}` (the findings of the image's sample SBOM);
 * - `CancelRescan {imageId, advisoryId}` → 202; emits `Scan.Cancelled` for the pending rescan the command's
 *   correlation id requested; 409 when that rescan completed already or none is pending;
 * - any other command → 422.
 *
 * Every arrival is counted per commandId (`GET /api/v1/commands/received`) and every application
 * (`GET /api/v1/commands/applied`), which is how tests prove a saga never sends a command twice.
 */
import { randomUUID } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { errorRef, HttpError } from '../api/errors.js';
import type { Logger } from '../core/logger.js';
import { GatewayCommand, type AggregateEvent } from '../workflows/sagas/definitions.js';
import type { EventSink } from './emitter.js';
import type { ImpactIndex } from './impact-index.js';

/** Default delay between `Scan.Requested` and `Scan.Completed`. */
export const DEFAULT_SCAN_DELAY_MS = 200;

/** The aggregate type the Gateway serves. */
export const SCAN_AGGREGATE = 'Scan';

/** Event types of the `Scan` aggregate. */
export const ScanEvent = {
  Requested: 'Scan.Requested',
  Completed: 'Scan.Completed',
  Cancelled: 'Scan.Cancelled',
} as const;

/** Command types of the `Scan` aggregate. */
export const ScanCommand = {
  RequestRescan: 'RequestRescan',
  CancelRescan: 'CancelRescan',
} as const;

/** Options of the Gateway. */
export interface GatewayOptions {
  events: EventSink;
  index: ImpactIndex;
  logger: Logger;
  /** Delay before a requested rescan completes; default {@link DEFAULT_SCAN_DELAY_MS}. */
  scanDelayMs?: number;
  /** Images whose rescans never complete (deadline tests and demos). */
  neverCompleteImages?: Iterable<string>;
}

/** Counters of the Gateway, by commandId. */
export interface GatewayCounters {
  /** Every arrival of a command (repeats included). */
  received: () => Record<string, number>;
  /** Every application of a command to an aggregate: 1 per accepted commandId, never more. */
  applied: () => Record<string, number>;
}

const CommandAnswer = Type.Object({
  commandId: Type.String(),
  aggregateSequence: Type.Integer({ description: 'Sequence of the aggregate after the command' }),
});
type CommandAnswer = Static<typeof CommandAnswer>;

const CommandHeaders = Type.Object({
  'x-tenant-id': Type.String({ minLength: 1, maxLength: 128 }),
  'idempotency-key': Type.String({ minLength: 1, maxLength: 512 }),
  'x-correlation-id': Type.String({ minLength: 1, maxLength: 128 }),
  traceparent: Type.Optional(Type.String({ pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' })),
});

const Counts = Type.Record(Type.String(), Type.Integer(), { description: 'Count per commandId' });

/** An answer of the Gateway: accepted (202) or refused (409/422), remembered per commandId for repeats. */
type Outcome = { status: 202; body: CommandAnswer } | { status: 409 | 422; body: { error: string; message: string } };

interface PendingScan {
  commandId: string;
  advisoryId: string;
  correlationId: string;
  traceparent: string | undefined;
  timer: NodeJS.Timeout | undefined;
}

interface ScanState {
  /** Number of events the aggregate emitted so far; the sequence of its last event. */
  sequence: number;
  pending: PendingScan[];
  /** `correlationId advisoryId` of every rescan that completed. */
  completed: Set<string>;
}

const refusal = (status: 409 | 422, error: string, message: string): Outcome => ({
  status,
  body: { error, message },
});

/** What identifies a command's content: a commandId reused for another command is refused. */
function fingerprintOf(command: GatewayCommand): string {
  const { aggregateType, aggregateId, commandType, payload, expectedSequence } = command;
  return JSON.stringify([aggregateType, aggregateId, commandType, payload, expectedSequence ?? null]);
}

function increment(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/** Registers the Gateway's routes on `app` and returns its counters and a `stop()` that clears the scan timers. */
export function registerGateway(app: FastifyInstance, options: GatewayOptions): GatewayCounters & { stop(): void } {
  const { events, index, logger } = options;
  const scanDelayMs = options.scanDelayMs ?? DEFAULT_SCAN_DELAY_MS;
  const neverComplete = new Set(options.neverCompleteImages ?? []);
  const received = new Map<string, number>();
  const applied = new Map<string, number>();
  const answers = new Map<string, { fingerprint: string; outcome: Outcome }>();
  const scans = new Map<string, ScanState>();

  const scanOf = (tenantId: string, imageId: string): ScanState => {
    const key = `${tenantId}\u0000${imageId}`;
    let scan = scans.get(key);
    if (!scan) scans.set(key, (scan = { sequence: 0, pending: [], completed: new Set() }));
    return scan;
  };

  const emit = (
    command: Pick<GatewayCommand, 'tenantId' | 'aggregateId'>,
    scan: ScanState,
    cause: { commandId: string; correlationId: string; traceparent: string | undefined },
    eventType: string,
    payload: Record<string, unknown>,
  ): number => {
    scan.sequence++;
    const event: AggregateEvent = {
      tenantId: command.tenantId,
      eventId: `evt-${randomUUID()}`,
      aggregateType: SCAN_AGGREGATE,
      aggregateId: command.aggregateId,
      eventType,
      sequence: scan.sequence,
      correlationId: cause.correlationId,
      occurredAt: new Date().toISOString(),
      payload,
      metadata: {
        causationId: cause.commandId,
        correlationId: cause.correlationId,
        ...(cause.traceparent !== undefined && { traceparent: cause.traceparent }),
      },
    };
    logger.info(
      { tenantId: event.tenantId, aggregateId: event.aggregateId, eventType, sequence: event.sequence },
      `${eventType} emitted`,
    );
    events.emit(event);
    return scan.sequence;
  };

  const requestRescan = (command: GatewayCommand, advisoryId: string, traceparent: string | undefined): Outcome => {
    const scan = scanOf(command.tenantId, command.aggregateId);
    const imageId = command.aggregateId;
    const pending: PendingScan = {
      commandId: command.commandId,
      advisoryId,
      correlationId: command.correlationId,
      traceparent,
      timer: undefined,
    };
    const sequence = emit(command, scan, pending, ScanEvent.Requested, { imageId, advisoryId });
    scan.pending.push(pending);
    if (!neverComplete.has(imageId)) {
      pending.timer = setTimeout(() => {
        scan.pending = scan.pending.filter((p) => p !== pending);
        scan.completed.add(`${pending.correlationId} ${advisoryId}`);
        emit(command, scan, pending, ScanEvent.Completed, {
          imageId,
          advisoryId,
          findings: index.findingsOf(imageId),
        });
      }, scanDelayMs);
    }
    return { status: 202, body: { commandId: command.commandId, aggregateSequence: sequence } };
  };

  const cancelRescan = (command: GatewayCommand, advisoryId: string, traceparent: string | undefined): Outcome => {
    const scan = scanOf(command.tenantId, command.aggregateId);
    const matching = scan.pending.filter(
      (p) => p.correlationId === command.correlationId && p.advisoryId === advisoryId,
    );
    if (matching.length === 0) {
      return scan.completed.has(`${command.correlationId} ${advisoryId}`)
        ? refusal(
            409,
            'ScanCompleted',
            `The rescan of image ${command.aggregateId} for advisory ${advisoryId} has already completed`,
          )
        : refusal(
            409,
            'NoPendingRescan',
            `No rescan of image ${command.aggregateId} for advisory ${advisoryId} is pending for correlation id ${command.correlationId}`,
          );
    }
    for (const p of matching) clearTimeout(p.timer);
    scan.pending = scan.pending.filter((p) => !matching.includes(p));
    const sequence = emit(
      command,
      scan,
      { commandId: command.commandId, correlationId: command.correlationId, traceparent },
      ScanEvent.Cancelled,
      { imageId: command.aggregateId, advisoryId },
    );
    return { status: 202, body: { commandId: command.commandId, aggregateSequence: sequence } };
  };

  /** Applies a new command: the aggregate's own checks, then its transition. */
  const apply = (command: GatewayCommand, traceparent: string | undefined): Outcome => {
    if (command.aggregateType !== SCAN_AGGREGATE) {
      return refusal(422, 'UnknownAggregate', `Unknown aggregate type ${command.aggregateType} (known: Scan)`);
    }
    if (command.commandType !== ScanCommand.RequestRescan && command.commandType !== ScanCommand.CancelRescan) {
      return refusal(
        422,
        'UnknownCommand',
        `Unknown command ${command.commandType} for aggregate Scan (known: RequestRescan, CancelRescan)`,
      );
    }
    const { imageId, advisoryId } = command.payload;
    if (typeof advisoryId !== 'string' || advisoryId === '') {
      return refusal(422, 'InvalidCommand', `${command.commandType} needs payload.advisoryId`);
    }
    if (imageId !== undefined && imageId !== command.aggregateId) {
      return refusal(422, 'InvalidCommand', `payload.imageId must equal the aggregate id ${command.aggregateId}`);
    }
    const scan = scanOf(command.tenantId, command.aggregateId);
    if (command.expectedSequence !== undefined && command.expectedSequence !== scan.sequence) {
      return refusal(
        409,
        'SequenceMismatch',
        `Scan ${command.aggregateId} is at sequence ${scan.sequence}, the command expected ${command.expectedSequence}`,
      );
    }
    return command.commandType === ScanCommand.RequestRescan
      ? requestRescan(command, advisoryId, traceparent)
      : cancelRescan(command, advisoryId, traceparent);
  };

  const typed = app.withTypeProvider<TypeBoxTypeProvider>();

  // Counted before validation, so that even a refused arrival shows up: the counts are what a receiver saw.
  typed.post(
    '/api/v1/commands',
    {
      schema: {
        body: GatewayCommand,
        headers: CommandHeaders,
        response: { 200: CommandAnswer, 202: CommandAnswer, 400: errorRef, 409: errorRef, 422: errorRef },
      },
      preValidation: async (request) => {
        const commandId = (request.body as { commandId?: unknown } | undefined)?.commandId;
        if (typeof commandId === 'string') increment(received, commandId);
      },
    },
    async (request, reply) => {
      const command = request.body;
      const headers = request.headers;
      const mismatch = (
        [
          ['x-tenant-id', headers['x-tenant-id'], command.tenantId, 'tenantId'],
          ['Idempotency-Key', headers['idempotency-key'], command.commandId, 'commandId'],
          ['x-correlation-id', headers['x-correlation-id'], command.correlationId, 'correlationId'],
        ] as const
      ).find(([, header, field]) => header !== field);
      if (mismatch) {
        throw new HttpError(400, 'HeaderMismatch', `The ${mismatch[0]} header must equal the body's ${mismatch[3]}`);
      }

      const key = `${command.tenantId}\u0000${command.commandId}`;
      const fingerprint = fingerprintOf(command);
      const previous = answers.get(key);
      if (previous) {
        if (previous.fingerprint !== fingerprint) {
          return reply.code(422).send({
            error: 'IdempotencyKeyReused',
            message: `Command ${command.commandId} was already used for a different command`,
          });
        }
        // The first answer again, changing nothing; an acceptance is answered 200, a refusal as it was.
        void reply.header('idempotent-replayed', 'true');
        const { outcome } = previous;
        return outcome.status === 202
          ? reply.code(200).send(outcome.body)
          : reply.code(outcome.status).send(outcome.body);
      }

      const outcome = apply(command, headers.traceparent);
      answers.set(key, { fingerprint, outcome });
      if (outcome.status === 202) increment(applied, command.commandId);
      request.log.info(
        {
          tenantId: command.tenantId,
          commandId: command.commandId,
          commandType: command.commandType,
          aggregateId: command.aggregateId,
          status: outcome.status,
        },
        outcome.status === 202 ? 'command applied' : `command refused: ${outcome.body.error}`,
      );
      return reply.code(outcome.status).send(outcome.body);
    },
  );

  typed.get('/api/v1/commands/received', { schema: { response: { 200: Counts } } }, async () =>
    Object.fromEntries(received),
  );
  typed.get('/api/v1/commands/applied', { schema: { response: { 200: Counts } } }, async () =>
    Object.fromEntries(applied),
  );

  return {
    received: () => Object.fromEntries(received),
    applied: () => Object.fromEntries(applied),
    stop() {
      for (const scan of scans.values()) for (const p of scan.pending) clearTimeout(p.timer);
    },
  };
}
