/**
 * The Temporal connection of a process, read the way Temporal's own tools read it: `@temporalio/envconfig`'s
 * environment variables (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_TLS*`, `TEMPORAL_API_KEY`,
 * `TEMPORAL_GRPC_META_*`) over a `temporal.toml` profile (`TEMPORAL_CONFIG_FILE`, `TEMPORAL_PROFILE`). Certificate and
 * key files are read and parsed here, at start-up, so a bad file is a configuration error naming it rather than a
 * handshake failure minutes later.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { connect as connectTls } from 'node:tls';
import { Connection, type TLSConfig } from '@temporalio/client';
import { loadClientConfigProfile, type ClientConfigProfile, type ConfigDataSource } from '@temporalio/envconfig';
import type { ReadTextFile } from './config.js';

/** TLS settings of the Temporal connection, as PEM text (kept as text so the configuration stays plain data). */
export interface TemporalTlsSettings {
  /** PEM of the CA that signed the server's certificate; undefined trusts the system's roots (Temporal Cloud). */
  serverCaCertificate?: string;
  /** PEM certificate and private key presented to the server (mTLS). */
  clientCertificate?: { crt: string; key: string };
  /** Name the server's certificate is checked against instead of the address' host. */
  serverName?: string;
}

/** The Temporal settings read from envconfig; `address` undefined means "start the embedded dev server". */
export interface TemporalConnectionSettings {
  address: string | undefined;
  namespace: string | undefined;
  /** Undefined: plaintext. An API key without TLS settings turns TLS on, as Temporal Cloud requires. */
  tls: TemporalTlsSettings | undefined;
  apiKey: string | undefined;
  /** gRPC metadata sent with every call (`TEMPORAL_GRPC_META_*`, a profile's `grpc_meta`). */
  metadata: Record<string, string> | undefined;
}

/** What `Connection.connect`/`Connection.lazy` and `NativeConnection.connect` take to reach the frontend. */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
  metadata?: Record<string, string>;
}

/**
 * The variables of Temporal's environment configuration the product reads (with `TEMPORAL_GRPC_META_*`), and where
 * the default `temporalio/temporal.toml` lies (`XDG_CONFIG_HOME`, else `HOME`/.config).
 */
const TEMPORAL_VARIABLES: ReadonlySet<string> = new Set([
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS',
  'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  'TEMPORAL_TLS_SERVER_CA_CERT_DATA',
  'TEMPORAL_TLS_CLIENT_CERT_PATH',
  'TEMPORAL_TLS_CLIENT_CERT_DATA',
  'TEMPORAL_TLS_CLIENT_KEY_PATH',
  'TEMPORAL_TLS_CLIENT_KEY_DATA',
  'TEMPORAL_TLS_SERVER_NAME',
  'TEMPORAL_CONFIG_FILE',
  'TEMPORAL_PROFILE',
  'XDG_CONFIG_HOME',
  'HOME',
  'APPDATA',
]);
const GRPC_META_PREFIX = 'TEMPORAL_GRPC_META_';

/** The variable and the profile key each TLS file can come from, for messages that say where to look. */
const TLS_SOURCES = {
  serverCACert: { env: 'TEMPORAL_TLS_SERVER_CA_CERT', key: 'server_ca_cert', what: 'certificate' },
  clientCert: { env: 'TEMPORAL_TLS_CLIENT_CERT', key: 'client_cert', what: 'certificate' },
  clientKey: { env: 'TEMPORAL_TLS_CLIENT_KEY', key: 'client_key', what: 'private key' },
} as const;
type TlsSource = keyof typeof TLS_SOURCES;

/**
 * Reads the Temporal connection settings from `env` (and the profile file it names or Temporal's default
 * `temporalio/temporal.toml`), recording every problem in `problems`.
 */
export function loadTemporalConnectionSettings(
  env: NodeJS.ProcessEnv,
  readFile: ReadTextFile,
  problems: string[],
): TemporalConnectionSettings {
  const none: TemporalConnectionSettings = {
    address: undefined,
    namespace: undefined,
    tls: undefined,
    apiKey: undefined,
    metadata: undefined,
  };
  // Only the variables envconfig reads reach it; blank ones count as unset, as everywhere else in the configuration.
  const vars = Object.fromEntries(
    Object.entries(env).flatMap(([name, value]) =>
      value?.trim() && (TEMPORAL_VARIABLES.has(name) || name.startsWith(GRPC_META_PREFIX))
        ? [[name, value.trim()]]
        : [],
    ),
  );
  const configFile = vars.TEMPORAL_CONFIG_FILE;
  let configSource: ConfigDataSource | undefined;
  if (configFile) {
    try {
      configSource = { data: readFile(configFile, 'utf8') };
    } catch (error) {
      problems.push(`TEMPORAL_CONFIG_FILE: cannot read ${configFile} (${reason(error)})`);
      return none;
    }
  }
  const profileName = vars.TEMPORAL_PROFILE ?? 'default';
  const where = `profile "${profileName}" of ${configFile ?? 'temporal.toml'}`;
  let profile: ClientConfigProfile;
  try {
    profile = loadClientConfigProfile({ overrideEnvVars: vars, ...(configSource && { configSource }) });
  } catch (error) {
    problems.push(`TEMPORAL_CONFIG_FILE/TEMPORAL_PROFILE: cannot load ${where} (${reason(error)})`);
    return none;
  }

  const address = profile.address?.trim() || undefined;
  if (address && !/^[^\s:/]+:\d+$/.test(address)) {
    problems.push(
      `TEMPORAL_ADDRESS must be host:port (got "${address}"${vars.TEMPORAL_ADDRESS ? '' : ` from ${where}`})`,
    );
  }

  let tls: TemporalTlsSettings | undefined;
  if (profile.tls ? profile.tls.disabled !== true : profile.apiKey !== undefined) {
    const pem = (source: TlsSource): string | undefined => {
      const data = profile.tls?.[source];
      if (data === undefined) return undefined;
      const { env: variable, key, what } = TLS_SOURCES[source];
      const named = 'path' in data ? `${variable}_PATH` : `${variable}_DATA`;
      const origin = vars[named] !== undefined ? named : `${key}_${'path' in data ? 'path' : 'data'} in ${where}`;
      const file = 'path' in data ? ` (${data.path})` : '';
      let text: string;
      try {
        text = 'path' in data ? readFile(data.path, 'utf8') : String(data.data);
      } catch (error) {
        problems.push(`${origin}: cannot read ${'path' in data ? data.path : 'it'}: ${reason(error)}`);
        return undefined;
      }
      try {
        if (source === 'clientKey') createPrivateKey(text);
        else new X509Certificate(text);
      } catch {
        problems.push(`${origin}${file} is not a PEM-encoded ${what}`);
        return undefined;
      }
      return text;
    };
    const serverCaCertificate = pem('serverCACert');
    const crt = pem('clientCert');
    const key = pem('clientKey');
    const hasCrt = profile.tls?.clientCert !== undefined;
    if (hasCrt !== (profile.tls?.clientKey !== undefined)) {
      problems.push(
        "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH (or the profile's client_cert_*/client_key_*) " +
          'go together: mTLS needs both the certificate and its key',
      );
    }
    tls = {
      ...(serverCaCertificate && { serverCaCertificate }),
      ...(crt && key && { clientCertificate: { crt, key } }),
      ...(profile.tls?.serverName && { serverName: profile.tls.serverName }),
    };
  }

  return {
    address,
    namespace: profile.namespace?.trim() || undefined,
    tls,
    apiKey: profile.apiKey,
    metadata: profile.grpcMeta && Object.keys(profile.grpcMeta).length > 0 ? profile.grpcMeta : undefined,
  };
}

/** The SDK's connection options for `address` with the TLS, API key and metadata of `settings`. */
export function temporalConnectionOptions(
  address: string,
  settings: Partial<Pick<TemporalConnectionSettings, 'tls' | 'apiKey' | 'metadata'>>,
): TemporalConnectionOptions {
  const { tls, apiKey, metadata } = settings;
  const bytes = (pem: string) => Buffer.from(pem, 'utf8');
  return {
    address,
    ...(tls && {
      tls: {
        ...(tls.serverCaCertificate && { serverRootCACertificate: bytes(tls.serverCaCertificate) }),
        ...(tls.clientCertificate && {
          clientCertPair: { crt: bytes(tls.clientCertificate.crt), key: bytes(tls.clientCertificate.key) },
        }),
        ...(tls.serverName && { serverNameOverride: tls.serverName }),
      },
    }),
    ...(apiKey && { apiKey }),
    ...(metadata && { metadata }),
  };
}

/** How long {@link connectTemporalClient} waits for the frontend before it looks for a TLS cause. */
const CLIENT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * `Connection.connect` with a clear error: the gRPC client only reports a missed deadline when the TLS handshake
 * fails, so on failure over TLS one handshake of its own says why (an untrusted server certificate, a refused or
 * missing client certificate) and the error names it.
 */
export async function connectTemporalClient(options: TemporalConnectionOptions): Promise<Connection> {
  return withTlsDiagnosis(options, () => Connection.connect({ connectTimeout: CLIENT_CONNECT_TIMEOUT_MS, ...options }));
}

/**
 * Runs `call` against the frontend of `options`; when it fails over TLS, one handshake of its own looks for the TLS
 * cause the gRPC client does not report (it only sees a missed deadline), and the error names it.
 */
export async function withTlsDiagnosis<T>(
  options: Pick<TemporalConnectionOptions, 'address' | 'tls'>,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const tlsProblem = options.tls ? await temporalTlsProblem(options.address, options.tls) : undefined;
    if (!tlsProblem) throw error;
    throw new Error(`Temporal at ${options.address}: TLS connection refused: ${tlsProblem}`, { cause: error });
  }
}

/** The HTTP/2 client preface and an empty SETTINGS frame: a frontend that accepted the handshake answers them. */
const HTTP2_PREFACE = Buffer.concat([
  Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
  Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
]);

/**
 * Why a TLS connection with `tls` to `address` fails, or undefined when the server answers over it. With TLS 1.3
 * the server refuses a client certificate only after the handshake, so the probe speaks first and waits for the
 * server's first frame or its alert.
 */
export function temporalTlsProblem(address: string, tls: TLSConfig): Promise<string | undefined> {
  const separator = address.lastIndexOf(':');
  const host = address.slice(0, separator);
  return new Promise((resolve) => {
    const socket = connectTls({
      host,
      port: Number(address.slice(separator + 1)),
      servername: tls.serverNameOverride ?? host,
      ALPNProtocols: ['h2'],
      ...(tls.serverRootCACertificate && { ca: Buffer.from(tls.serverRootCACertificate) }),
      ...(tls.clientCertPair && {
        cert: Buffer.from(tls.clientCertPair.crt),
        key: Buffer.from(tls.clientCertPair.key),
      }),
      timeout: CLIENT_CONNECT_TIMEOUT_MS,
    });
    const done = (problem: string | undefined) => {
      socket.destroy();
      resolve(problem);
    };
    socket.once('secureConnect', () => socket.write(HTTP2_PREFACE));
    socket.once('data', () => done(undefined));
    socket.once('error', (error: NodeJS.ErrnoException) => done(tlsErrorText(error, tls.clientCertPair !== undefined)));
    socket.once('close', () => done('the server closed the connection'));
    // No answer at all is no TLS problem: the caller's own error says the server is unreachable.
    socket.once('timeout', () => done(undefined));
  });
}

/** A TLS error in words a person configuring the connection acts on. */
function tlsErrorText(error: NodeJS.ErrnoException, presentedCertificate: boolean): string {
  if (/CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|BAD_CERTIFICATE|UNKNOWN_CA/i.test(error.code ?? '')) {
    return presentedCertificate
      ? `the server did not accept the client certificate (${error.message.trim()})`
      : `the server requires a client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH/TEMPORAL_TLS_CLIENT_KEY_PATH) (${error.message.trim()})`;
  }
  if (/CERT|ISSUER|SELF_SIGNED|HOSTNAME|ALTNAME/i.test(error.code ?? '')) {
    return `the server's certificate is not trusted (check TEMPORAL_TLS_SERVER_CA_CERT_PATH and TEMPORAL_TLS_SERVER_NAME): ${error.message}`;
  }
  return error.message;
}

/** An error's code, else the first line of its message: a TOML parser's excerpt of the file may quote an API key. */
function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code ?? (error instanceof Error ? error.message : String(error)).split('\n')[0]!.trim();
}
