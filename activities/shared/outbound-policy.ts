/**
 * What an outbound call may carry: the URL policy (`https`, or plain `http` to a loopback host only, and no
 * credentials in the URL) and the header name/value rules. Pure (no I/O, no dependencies), so configuration and API
 * validation apply at the edge the same policy that the outbound layer (`./http.ts`) enforces before it sends.
 */

/** RFC 9110 `token`: the valid characters of a header name. */
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Visible ASCII (and tab): what a header value may hold, so fetch accepts it and every proxy forwards it. */
export const HEADER_VALUE = /^[\t\x20-\x7e]+$/;

/** Why a URL breaks the outbound policy. */
export const UrlPolicyViolation = {
  /** Not an absolute URL. */
  NotAbsolute: 'not-absolute',
  /** The URL carries a user name or password (they would be sent, and logged by proxies). */
  Credentials: 'credentials',
  /** Plain `http` to a host that is not loopback. */
  InsecureHttp: 'insecure-http',
  /** Neither `https` nor `http`. */
  Protocol: 'protocol',
} as const;
export type UrlPolicyViolation = (typeof UrlPolicyViolation)[keyof typeof UrlPolicyViolation];

/** Whether `hostname` (as `URL` normalises it) is a loopback host: 127.0.0.0/8, ::1 or localhost. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** A URL for the logs: origin and path, without credentials, query or fragment (which may carry tokens). */
export function urlForLogs(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** The outcome of checking a URL against the policy: the parsed URL, or the violation and a message fragment. */
export type UrlPolicyResult =
  | { ok: true; url: URL }
  | {
      ok: false;
      violation: UrlPolicyViolation;
      /** The parsed URL (absent when it is not an absolute URL), for messages through {@link urlForLogs}. */
      url?: URL;
      /** Completes a sentence whose subject names the setting (`… must use https …`); never quotes secrets. */
      problem: string;
    };

/** Checks `raw` (a string or a parsed URL) against the outbound URL policy. */
export function checkOutboundUrl(raw: string | URL): UrlPolicyResult {
  let url: URL;
  try {
    url = typeof raw === 'string' ? new URL(raw) : raw;
  } catch {
    return { ok: false, violation: UrlPolicyViolation.NotAbsolute, problem: 'must be an absolute URL' };
  }
  if (url.username !== '' || url.password !== '') {
    return { ok: false, violation: UrlPolicyViolation.Credentials, url, problem: 'must not carry credentials' };
  }
  if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))) return { ok: true, url };
  if (url.protocol === 'http:') {
    return {
      ok: false,
      violation: UrlPolicyViolation.InsecureHttp,
      url,
      problem: `must use https (plain http is allowed only for loopback hosts: 127.0.0.0/8, ::1, localhost; got host "${url.hostname}")`,
    };
  }
  return {
    ok: false,
    violation: UrlPolicyViolation.Protocol,
    url,
    problem: `must be an https URL (got protocol "${url.protocol}")`,
  };
}
