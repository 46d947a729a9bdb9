import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import {
  checkOutboundUrl,
  HEADER_NAME,
  HEADER_VALUE,
  isLoopbackHost,
  UrlPolicyViolation,
  urlForLogs,
} from '../../activities/shared/outbound-policy.js';
import { DeliveryError, deliveryFailure, parseDeliveryUrl } from '../../activities/shared/http.js';
import { sqlLiterals } from '../../db/pool.js';

/** The violation of `url`, or `ok`. */
const verdict = (url: string) => {
  const checked = checkOutboundUrl(url);
  return checked.ok ? 'ok' : checked.violation;
};

describe('outbound URL policy', () => {
  it('allows https anywhere and plain http to loopback hosts only', () => {
    expect(verdict('https://hooks.example.com/x?token=1')).toBe('ok');
    for (const url of ['http://127.0.0.1:8080/x', 'http://127.9.8.7/', 'http://localhost/x', 'http://LOCALHOST./x']) {
      expect(verdict(url)).toBe('ok');
    }
    expect(verdict('http://[::1]:9000/x')).toBe('ok');
    for (const url of [
      'http://hooks.example.com/x',
      'http://127.0.0.1.evil.example/x',
      'http://localhost.evil.example/x',
      'http://evil.example/127.0.0.1',
      'http://10.0.0.1/x',
      'http://[::2]/x',
    ]) {
      expect(verdict(url)).toBe(UrlPolicyViolation.InsecureHttp);
    }
  });

  it('refuses credentials in any part of the authority', () => {
    for (const url of ['https://user@hooks.example.com/', 'https://:pw@hooks.example.com/', 'https://u:p@host/']) {
      expect(verdict(url)).toBe(UrlPolicyViolation.Credentials);
    }
    expect(verdict('http://user@127.0.0.1/')).toBe(UrlPolicyViolation.Credentials);
  });

  it('refuses other protocols and relative URLs', () => {
    expect(verdict('ftp://hooks.example.com/')).toBe(UrlPolicyViolation.Protocol);
    expect(verdict('file:///etc/passwd')).toBe(UrlPolicyViolation.Protocol);
    expect(verdict('ftp://127.0.0.1/x')).toBe(UrlPolicyViolation.Protocol);
    expect(verdict('ws://localhost/x')).toBe(UrlPolicyViolation.Protocol);
    expect(verdict('/relative')).toBe(UrlPolicyViolation.NotAbsolute);
    const checked = checkOutboundUrl('http://hooks.example.com/');
    expect(checked.ok ? '' : checked.problem).toMatch(/^must use https .*got host "hooks\.example\.com"/);
  });

  it('recognises loopback hosts exactly', () => {
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('127.0.0.1.nip.io')).toBe(false);
    expect(isLoopbackHost('x127.0.0.1')).toBe(false);
    expect(isLoopbackHost('localhostx')).toBe(false);
  });

  it('logs a URL without credentials, query or fragment', () => {
    expect(urlForLogs(new URL('https://u:p@hooks.example.com:8443/a/b?token=s3cr3t#frag'))).toBe(
      'https://hooks.example.com:8443/a/b',
    );
  });

  it('throws a non-retryable DeliveryError that never quotes the query or credentials', () => {
    let error: unknown;
    try {
      parseDeliveryUrl('http://user:pw@hooks.example.com/path?token=s3cr3t');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DeliveryError);
    expect(error).toMatchObject({ kind: 'invalid', retryable: false });
    expect((error as Error).message).toBe('delivery URL http://hooks.example.com/path must not carry credentials');
    expect(parseDeliveryUrl('https://hooks.example.com/x').href).toBe('https://hooks.example.com/x');
  });

  it('accepts header names and values only of their RFC character sets', () => {
    expect(HEADER_NAME.test('X-Api-Key')).toBe(true);
    expect(HEADER_NAME.test('X Api')).toBe(false);
    expect(HEADER_NAME.test('X-Api:')).toBe(false);
    expect(HEADER_VALUE.test('Bearer abc\tdef')).toBe(true);
    expect(HEADER_VALUE.test('line\r\nbreak')).toBe(false);
    expect(HEADER_VALUE.test('')).toBe(false);
    expect(HEADER_VALUE.test('tschüss')).toBe(false);
  });
});

describe('deliveryFailure', () => {
  const options = { finalType: 'Rejected', retryType: 'Unavailable' };

  it('retries a retryable failure under the retry type, after the delay the peer asked for', () => {
    const error = new DeliveryError('HTTP 429', { kind: 'http', retryable: true, status: 429, retryAfterMs: 2000 });
    const failure = deliveryFailure(error, options);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'Unavailable', nonRetryable: false, nextRetryDelay: 2000 });
    expect(failure.message).toBe('HTTP 429');
  });

  it('ends a refusal, or a retryable failure whose attempts are spent, under the final type', () => {
    const refused = new DeliveryError('HTTP 400', { kind: 'http', retryable: false, status: 400, retryAfterMs: 5 });
    expect(deliveryFailure(refused, options)).toMatchObject({ type: 'Rejected', nonRetryable: true });
    expect(deliveryFailure(refused, options).nextRetryDelay).toBeUndefined();
    const spent = new DeliveryError('HTTP 503', { kind: 'http', retryable: true, status: 503 });
    expect(deliveryFailure(spent, { ...options, final: true, message: 'HTTP 503 (attempt 5)' })).toMatchObject({
      type: 'Rejected',
      nonRetryable: true,
      message: 'HTTP 503 (attempt 5)',
    });
  });

  it('keeps details and rethrows anything that is not a delivery failure', () => {
    const error = new DeliveryError('timed out', { kind: 'timeout', retryable: true });
    expect(deliveryFailure(error, { ...options, details: [{ attempt: 2 }] }).details).toEqual([{ attempt: 2 }]);
    const bug = new TypeError('bug');
    expect(() => deliveryFailure(bug, options)).toThrow(bug);
  });
});

describe('sqlLiterals', () => {
  it('quotes plain status names and refuses anything that could leave the literal', () => {
    expect(sqlLiterals(['succeeded', 'failed'])).toBe("'succeeded', 'failed'");
    for (const value of ["x'); DROP TABLE t; --", 'A', 'with space', '']) {
      expect(() => sqlLiterals([value])).toThrow(/not a plain SQL literal/);
    }
  });
});
