import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeJwt, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import {
  signApprovalLink,
  signResumeToken,
  verifyApprovalLink,
  type ApprovalLinkClaims,
} from '../../notify/approval-links.js';

const SECRET = 'link-secret-0123456789abcdef0123456789';
const OTHER_SECRET = 'link-secret-fedcba9876543210fedcba9876';
const ISSUER = 'stellaops-workflows/pack-approvals';
const ALG_NOT_ALLOWED = '"alg" (Algorithm) Header Parameter value not allowed';

/** When the links below are signed; every test runs on this clock (jose reads `Date`). */
const SIGNED_AT = new Date('2025-01-01T00:00:00.000Z');
const EXPIRES_AT = new Date('2025-01-01T01:00:00.000Z');

const claims: ApprovalLinkClaims = {
  tenantId: 'tenant-a',
  runId: 'run-1',
  approvalId: 'appr-1',
  recipient: 'ops@example.com',
  grants: ['deploy:prod', 'packs:approve'],
};

const resumeClaims = {
  tenantId: 'tenant-a',
  runId: 'run-1',
  approvalId: 'appr-1',
  decision: 'approve',
  decidedBy: 'ops@example.com',
};

/** A token signed like the service's own (HS256, its issuer), with any payload. */
function forge(payload: JWTPayload, options: { secret?: string; issuer?: string; alg?: string } = {}): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: options.alg ?? 'HS256' })
    .setIssuer(options.issuer ?? ISSUER)
    .setIssuedAt()
    .setExpirationTime(Math.floor(EXPIRES_AT.getTime() / 1000))
    .sign(new TextEncoder().encode(options.secret ?? SECRET));
}

function at(iso: string): void {
  vi.setSystemTime(new Date(iso));
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'], now: SIGNED_AT });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('approval links', () => {
  it('verify to exactly the signed claims until they expire', async () => {
    const token = await signApprovalLink(SECRET, claims, EXPIRES_AT);
    at('2025-01-01T00:59:59.000Z');
    await expect(verifyApprovalLink(SECRET, token)).resolves.toEqual(claims);
  });

  it('are refused from their expiry on', async () => {
    const token = await signApprovalLink(SECRET, claims, EXPIRES_AT);
    at('2025-01-01T01:00:00.000Z');
    await expect(verifyApprovalLink(SECRET, token)).rejects.toThrow(/"exp" claim timestamp check failed/);
    at('2025-03-01T00:00:00.000Z');
    await expect(verifyApprovalLink(SECRET, token)).rejects.toThrow(/"exp" claim timestamp check failed/);
  });

  it('are accepted under the secret they were signed with only', async () => {
    const token = await signApprovalLink(OTHER_SECRET, claims, EXPIRES_AT);
    await expect(verifyApprovalLink(SECRET, token)).rejects.toThrow(/signature verification failed/);
    await expect(verifyApprovalLink(OTHER_SECRET, token)).resolves.toEqual(claims);
    await expect(verifyApprovalLink(OTHER_SECRET, await signApprovalLink(SECRET, claims, EXPIRES_AT))).rejects.toThrow(
      /signature verification failed/,
    );
  });

  it('are refused when their claims were changed after signing', async () => {
    const token = await signApprovalLink(SECRET, claims, EXPIRES_AT);
    const [header, , signature] = token.split('.');
    const tampered = { ...decodeJwt(token), approvalId: 'appr-2', grants: ['deploy:prod', 'admin'] };
    const payload = Buffer.from(JSON.stringify(tampered)).toString('base64url');
    await expect(verifyApprovalLink(SECRET, `${header}.${payload}.${signature}`)).rejects.toThrow(
      /signature verification failed/,
    );
  });

  it('are refused when unsigned or signed with another algorithm', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
    const payload = Buffer.from(
      JSON.stringify({ ...claims, purpose: 'approval-link', iss: ISSUER, exp: EXPIRES_AT.getTime() / 1000 }),
    ).toString('base64url');
    await expect(verifyApprovalLink(SECRET, `${header}.${payload}.`)).rejects.toThrow(ALG_NOT_ALLOWED);
    const hs512 = await forge({ ...claims, purpose: 'approval-link' }, { alg: 'HS512' });
    await expect(verifyApprovalLink(SECRET, hs512)).rejects.toThrow(ALG_NOT_ALLOWED);
  });

  it('are refused when issued by someone else with the same secret', async () => {
    const token = await forge({ ...claims, purpose: 'approval-link' }, { issuer: 'someone-else' });
    await expect(verifyApprovalLink(SECRET, token)).rejects.toThrow(/unexpected "iss" claim value/);
  });

  it('refuse a resume token presented as an approval link', async () => {
    const resumeToken = await signResumeToken(SECRET, resumeClaims);
    await expect(verifyApprovalLink(SECRET, resumeToken)).rejects.toThrow('not an approval link token');
    // Even one carrying every claim of a link: the purpose decides, not the shape.
    const lookalike = await forge({ ...claims, purpose: 'resume' });
    await expect(verifyApprovalLink(SECRET, lookalike)).rejects.toThrow('not an approval link token');
    await expect(verifyApprovalLink(SECRET, await forge({ ...claims }))).rejects.toThrow('not an approval link token');
  });

  it.each([
    { label: 'no recipient', payload: { ...claims, recipient: undefined } },
    { label: 'a numeric tenant', payload: { ...claims, tenantId: 7 } },
    { label: 'a numeric run', payload: { ...claims, runId: 1 } },
    { label: 'a null approval', payload: { ...claims, approvalId: null } },
    { label: 'a list as recipient', payload: { ...claims, recipient: ['ops@example.com'] } },
    { label: 'grants as a string', payload: { ...claims, grants: 'deploy:prod' } },
    { label: 'no grants', payload: { ...claims, grants: undefined } },
  ])('refuse a correctly signed link with $label', async ({ payload }) => {
    const token = await forge({ ...payload, purpose: 'approval-link' } as JWTPayload);
    await expect(verifyApprovalLink(SECRET, token)).rejects.toThrow('malformed approval link token');
  });
});

describe('resume tokens', () => {
  it('carry the decision for seven days, signed by this service, and are not approval links', async () => {
    const token = await signResumeToken(SECRET, resumeClaims);
    at('2025-01-07T23:59:59.000Z');
    const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(SECRET), { issuer: ISSUER });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload).toEqual({
      ...resumeClaims,
      purpose: 'resume',
      iss: ISSUER,
      iat: SIGNED_AT.getTime() / 1000,
      exp: SIGNED_AT.getTime() / 1000 + 7 * 24 * 3600,
    });
    at('2025-01-08T00:00:00.000Z');
    await expect(jwtVerify(token, new TextEncoder().encode(SECRET), { issuer: ISSUER })).rejects.toThrow(/"exp"/);
  });

  it('are told apart from approval links by their purpose', async () => {
    const link = await signApprovalLink(SECRET, claims, EXPIRES_AT);
    const resume = await signResumeToken(SECRET, resumeClaims);
    expect([decodeJwt(link).purpose, decodeJwt(resume).purpose]).toEqual(['approval-link', 'resume']);
  });
});
