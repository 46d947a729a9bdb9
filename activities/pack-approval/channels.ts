/**
 * Delivery channels of pack-approval notifications: email (SMTP, or `.eml` files in a local inbox for development)
 * and signed webhooks. One `send` call is one delivery attempt; failures throw a `DeliveryError` whose `retryable`
 * tells the calling activity whether another attempt can succeed. Every delivery carries an identifier derived from
 * the caller's idempotency key (email `Message-ID` and `X-StellaOps-Idempotency-Key`; webhook `webhook-id` and
 * `Idempotency-Key`), so receivers can drop the duplicates a retried send produces.
 */
import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type { Logger } from '../../core/logger.js';
import {
  createSigner,
  DEFAULT_DELIVERY_TIMEOUT_MS,
  DeliveryError,
  HEADER_NAME,
  invalidDelivery,
  parseDeliveryUrl,
  postJson,
  urlForLogs,
  type DeliveryFailureKind,
} from '../shared/http.js';

/** Domain part of the Message-IDs this service generates. */
const MESSAGE_ID_DOMAIN = 'stellaops-workflows';
/** Header carrying the caller's idempotency key on emails. */
const IDEMPOTENCY_HEADER = 'X-StellaOps-Idempotency-Key';
/** Email headers the sender sets itself; `headers` may not override them. */
const RESERVED_EMAIL_HEADERS = new Set([
  'from',
  'to',
  'cc',
  'bcc',
  'subject',
  'date',
  'message-id',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  IDEMPOTENCY_HEADER.toLowerCase(),
]);

/** Hex SHA-256 of an idempotency key, truncated: the stable name of one logical message. */
function keyDigest(idempotencyKey: string): string {
  return createHash('sha256').update(idempotencyKey, 'utf8').digest('hex').slice(0, 32);
}

/**
 * The Message-ID of the email sent for `idempotencyKey`: `<{first 32 hex digits of its SHA-256}@stellaops-workflows>`.
 * Identical for every retry of the same logical message.
 */
export function messageIdFor(idempotencyKey: string): string {
  return `<${keyDigest(idempotencyKey)}@${MESSAGE_ID_DOMAIN}>`;
}

// ---------------------------------------------------------------------------------------------------------------
// Email
// ---------------------------------------------------------------------------------------------------------------

/** Options of `createEmailSender`. */
export interface EmailSenderOptions {
  /**
   * SMTP server, e.g. `smtp://127.0.0.1:2525` or `smtps://user:pass@host:465` (credentials are never logged).
   * Without it, messages are written as `.eml` files into `inboxDir`.
   */
  smtpUrl?: string;
  /** Sender address (`From`), e.g. `StellaOps <noreply@example.com>`. */
  from: string;
  /** Directory of the local inbox (inbox mode); `{os tmpdir}/stellaops-workflows-inbox` by default. */
  inboxDir?: string;
  /** Timeout of each SMTP phase (connection, greeting, idle socket), in ms; 10 000 by default. */
  timeoutMs?: number;
  logger: Logger;
}

/** One email. */
export interface EmailMessage {
  /** Recipient address(es), comma-separated. */
  to: string;
  subject: string;
  /** Plain-text body. */
  text: string;
  /** HTML alternative of the body. */
  html?: string;
  /** Stable across retries of the same logical message: derives the Message-ID and `X-StellaOps-Idempotency-Key`. */
  idempotencyKey: string;
  /** Extra headers; may not override the headers the sender sets itself (From, To, Subject, Message-ID…). */
  headers?: Record<string, string>;
}

/** Sends emails; one `send` call is one delivery attempt. */
export interface EmailSender {
  /** `smtp` when an SMTP URL is configured, `inbox` when messages go to `.eml` files. */
  readonly mode: 'smtp' | 'inbox';
  /**
   * Sends (or, in inbox mode, writes) one message.
   * @returns the Message-ID (angle brackets included) and, in inbox mode, the path of the `.eml` file.
   * @throws DeliveryError: SMTP connection failures, timeouts and 4xx replies are retryable; 5xx replies, invalid
   *   messages and configuration errors are not; inbox write failures are retryable.
   */
  send(msg: EmailMessage): Promise<{ messageId: string; location?: string }>;
}

/** The properties nodemailer attaches to its errors. */
interface SmtpErrorLike {
  code?: unknown;
  responseCode?: unknown;
  message?: unknown;
}

/** Nodemailer / socket error codes of failures that another attempt can get past. */
const TRANSIENT_SMTP_CODES = new Set([
  'ECONNECTION',
  'ETIMEDOUT',
  'ESOCKET',
  'EDNS',
  'EPROXY',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/**
 * Classifies an SMTP failure: an SMTP reply code decides first (400–499 retryable, 500–599 not); otherwise
 * connection-level failures (refused, reset, timeouts, DNS) are retryable and everything else (invalid envelope or
 * message, authentication, TLS, configuration) is not.
 */
function smtpFailure(error: unknown): {
  kind: DeliveryFailureKind;
  retryable: boolean;
  status?: number;
  code?: string;
  reason: string;
} {
  const e = (typeof error === 'object' && error !== null ? error : {}) as SmtpErrorLike;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const status = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const reason = typeof e.message === 'string' ? e.message : String(error);
  let retryable: boolean;
  if (status !== undefined && status >= 400 && status < 500) retryable = true;
  else if (status !== undefined && status >= 500 && status < 600) retryable = false;
  else retryable = code !== undefined && TRANSIENT_SMTP_CODES.has(code);
  const kind: DeliveryFailureKind =
    status !== undefined ? 'smtp' : code === 'ETIMEDOUT' ? 'timeout' : retryable ? 'network' : 'invalid';
  return { kind, retryable, reason, ...(status !== undefined && { status }), ...(code !== undefined && { code }) };
}

/** Validates the caller's extra headers. @throws DeliveryError (not retryable). */
function checkEmailHeaders(headers: Record<string, string> | undefined): void {
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (!HEADER_NAME.test(name)) {
      throw invalidDelivery(`email header name ${JSON.stringify(name)} is invalid`);
    }
    if (RESERVED_EMAIL_HEADERS.has(name.toLowerCase())) {
      throw invalidDelivery(`email header ${name} is set by the sender and cannot be overridden`);
    }
    if (/[\r\n]/.test(value)) {
      throw invalidDelivery(`email header ${name} must not contain line breaks`);
    }
  }
}

/**
 * Creates the email sender. With `smtpUrl`, each `send` opens an SMTP connection (nodemailer; connection, greeting
 * and socket timeouts of `timeoutMs`); otherwise each message is written as an RFC 822 `.eml` file named after its
 * Message-ID into `inboxDir` (a retried send overwrites the same file) and its path is logged at INFO.
 *
 * Every message carries `Message-ID: <sha256(idempotencyKey)[0..32]@stellaops-workflows>` and
 * `X-StellaOps-Idempotency-Key: {idempotencyKey}`. The SMTP URL's credentials are never logged.
 * @throws Error when `smtpUrl` is not an `smtp://` or `smtps://` URL (the URL is not quoted).
 */
export function createEmailSender(options: EmailSenderOptions): EmailSender {
  const { from, logger } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS;

  /** Headers and fields shared by both modes. */
  const compose = (msg: EmailMessage) => {
    if (msg.idempotencyKey.trim() === '' || /[\r\n]/.test(msg.idempotencyKey)) {
      throw invalidDelivery('email idempotency key must be non-empty and on one line');
    }
    checkEmailHeaders(msg.headers);
    const messageId = messageIdFor(msg.idempotencyKey);
    return {
      messageId,
      mail: {
        from,
        to: msg.to,
        subject: msg.subject,
        text: msg.text,
        ...(msg.html !== undefined && { html: msg.html }),
        messageId,
        headers: { ...msg.headers, [IDEMPOTENCY_HEADER]: msg.idempotencyKey },
      },
    };
  };

  if (options.smtpUrl === undefined) {
    const inboxDir = options.inboxDir ?? join(tmpdir(), 'stellaops-workflows-inbox');
    const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
    return {
      mode: 'inbox',
      async send(msg) {
        const { messageId, mail } = compose(msg);
        let raw: Buffer;
        try {
          const info = await composer.sendMail(mail);
          raw = info.message as Buffer;
        } catch (error) {
          const { reason, code } = smtpFailure(error);
          throw new DeliveryError(`email could not be composed: ${reason}`, {
            kind: 'invalid',
            retryable: false,
            ...(code !== undefined && { code }),
            cause: error,
          });
        }
        const location = join(inboxDir, `${keyDigest(msg.idempotencyKey)}.eml`);
        try {
          await mkdir(inboxDir, { recursive: true });
          // Written next to its final name, then renamed: a reader never sees half a message.
          const partial = `${location}.${process.pid}.partial`;
          await writeFile(partial, raw);
          await rename(partial, location);
        } catch (error) {
          const code = (error as { code?: unknown }).code;
          logger.warn({ messageId, location, code }, `Email could not be written to the local inbox ${location}`);
          throw new DeliveryError(`email could not be written to ${location}: ${(error as Error).message}`, {
            kind: 'io',
            retryable: true,
            ...(typeof code === 'string' && { code }),
            cause: error,
          });
        }
        logger.info({ messageId, to: msg.to, location }, `Email "${msg.subject}" written to local inbox: ${location}`);
        return { messageId, location };
      },
    };
  }

  let smtp: URL;
  try {
    smtp = new URL(options.smtpUrl);
  } catch {
    throw new Error('smtpUrl must be an smtp:// or smtps:// URL');
  }
  if (smtp.protocol !== 'smtp:' && smtp.protocol !== 'smtps:') {
    throw new Error(`smtpUrl must be an smtp:// or smtps:// URL (got protocol "${smtp.protocol}")`);
  }
  const server = `${smtp.protocol}//${smtp.host}`;
  const transport = nodemailer.createTransport({
    url: options.smtpUrl,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    logger: false,
    debug: false,
  });

  return {
    mode: 'smtp',
    async send(msg) {
      const { messageId, mail } = compose(msg);
      try {
        const info = await transport.sendMail(mail);
        const fields = { messageId, to: msg.to, server, response: info.response };
        if (info.rejected.length > 0) {
          logger.warn({ ...fields, rejected: info.rejected }, `Email "${msg.subject}" rejected for some recipients`);
        } else {
          logger.info(fields, `Email "${msg.subject}" sent through ${server}`);
        }
        return { messageId };
      } catch (error) {
        const { reason, ...details } = smtpFailure(error);
        const message = `email to ${msg.to} through ${server} failed: ${reason}`;
        logger.warn({ messageId, to: msg.to, server, ...details }, message);
        throw new DeliveryError(message, { ...details, cause: error });
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Signed webhook
// ---------------------------------------------------------------------------------------------------------------

/** Options of `createSignedWebhookSender`. */
export interface SignedWebhookSenderOptions {
  /** Standard Webhooks secret (`whsec_` + base64); when set, deliveries are signed. Never logged. */
  signingSecret?: string;
  /** Timeout of one delivery attempt in ms; 10 000 by default. */
  timeoutMs?: number;
  logger: Logger;
}

/** One webhook delivery. */
export interface SignedWebhookMessage {
  /** `https` URL (plain `http` only for loopback hosts). */
  url: string;
  tenantId: string;
  /** Stable across retries: sent as `Idempotency-Key` and `webhook-id`. */
  idempotencyKey: string;
  /** Serialized as the JSON body. */
  payload: unknown;
}

/** Sends webhooks; one `send` call is one delivery attempt. */
export interface SignedWebhookSender {
  /**
   * POSTs the payload.
   * @returns the receiver's 2xx status.
   * @throws DeliveryError: network errors, timeouts, 5xx, 408 and 429 are retryable (`retryAfterMs` from
   *   `Retry-After`); other 4xx, redirects and invalid URLs are not.
   */
  send(msg: SignedWebhookMessage): Promise<{ status: number }>;
}

/**
 * Creates the signed-webhook sender: `POST` with `Content-Type: application/json`, `Idempotency-Key`,
 * `X-StellaOps-Tenant` and, when a secret is configured, the Standard Webhooks headers `webhook-id` (the idempotency
 * key), `webhook-timestamp` and `webhook-signature`. Redirects are not followed. The URL must be `https` (or `http`
 * to a loopback host).
 * @throws Error when `signingSecret` is not a valid Standard Webhooks secret (the secret is not quoted).
 */
export function createSignedWebhookSender(options: SignedWebhookSenderOptions): SignedWebhookSender {
  const signer = createSigner(options.signingSecret, 'signingSecret');
  const timeoutMs = options.timeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS;
  return {
    async send(msg) {
      let url: URL;
      try {
        url = parseDeliveryUrl(msg.url);
      } catch (error) {
        options.logger.warn(
          { tenantId: msg.tenantId, retryable: false },
          `Pack approval webhook refused: ${(error as Error).message}`,
        );
        throw error;
      }
      return postJson({
        url,
        body: JSON.stringify(msg.payload),
        headers: { 'Idempotency-Key': msg.idempotencyKey, 'X-StellaOps-Tenant': msg.tenantId },
        signer,
        messageId: msg.idempotencyKey,
        timeoutMs,
        logger: options.logger,
        logFields: { tenantId: msg.tenantId, idempotencyKey: msg.idempotencyKey },
        what: `Pack approval webhook to ${urlForLogs(url)}`,
      });
    },
  };
}
