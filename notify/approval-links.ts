/**
 * Signed, expiring tokens of this service (HS256 with the approval-link secret): approval links, which let one
 * recipient decide one approval, and resume tokens handed back to CLI users after a decision.
 */
import { jwtVerify, SignJWT } from 'jose';

const ISSUER = 'stellaops-workflows/pack-approvals';

/** Claims of an approval link. */
export interface ApprovalLinkClaims {
  tenantId: string;
  runId: string;
  approvalId: string;
  /** Who the link was sent to; recorded as the decider. */
  recipient: string;
  /** Grants the link confers (the approval's required grants). */
  grants: string[];
}

const key = (secret: string) => new TextEncoder().encode(secret);

/** Signs an approval link token valid until `expiresAt`. */
export async function signApprovalLink(secret: string, claims: ApprovalLinkClaims, expiresAt: Date): Promise<string> {
  return new SignJWT({ ...claims, purpose: 'approval-link' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
    .sign(key(secret));
}

/** Verifies an approval link token; throws when invalid, expired or not a link token. */
export async function verifyApprovalLink(secret: string, token: string): Promise<ApprovalLinkClaims> {
  const { payload } = await jwtVerify(token, key(secret), { issuer: ISSUER, algorithms: ['HS256'] });
  if (payload.purpose !== 'approval-link') throw new Error('not an approval link token');
  const { tenantId, runId, approvalId, recipient, grants } = payload as unknown as ApprovalLinkClaims;
  if (![tenantId, runId, approvalId, recipient].every((v) => typeof v === 'string') || !Array.isArray(grants)) {
    throw new Error('malformed approval link token');
  }
  return { tenantId, runId, approvalId, recipient, grants };
}

/** Signs the resume token returned by an ack (for CLI use; never the Task Runner's own secret). */
export async function signResumeToken(
  secret: string,
  claims: { tenantId: string; runId: string; approvalId: string; decision: string; decidedBy: string },
): Promise<string> {
  return new SignJWT({ ...claims, purpose: 'resume' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime('7d')
    .sign(key(secret));
}
