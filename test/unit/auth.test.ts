import { describe, expect, it } from 'vitest';
import { HttpError } from '../../api/errors.js';
import { createTestSigner } from '../support/auth.js';

describe('token verification', () => {
  it('accepts a valid token and exposes tenant and scopes', async () => {
    const signer = await createTestSigner();
    const principal = await signer.verifier(await signer.token({ tenant: 'acme', scopes: ['a:read', 'b:write'] }));
    expect(principal.tenantId).toBe('acme');
    expect([...principal.scopes].sort()).toEqual(['a:read', 'b:write']);
  });

  it.each([
    [
      'signed by an unknown key',
      (s: Awaited<ReturnType<typeof createTestSigner>>) => s.foreignToken({ tenant: 'acme', scopes: [] }),
    ],
    [
      'for another audience',
      (s: Awaited<ReturnType<typeof createTestSigner>>) => s.token({ tenant: 'acme', audience: 'other' }),
    ],
    ['expired', (s: Awaited<ReturnType<typeof createTestSigner>>) => s.token({ tenant: 'acme', expiresIn: '-1m' })],
    ['without a tenant', (s: Awaited<ReturnType<typeof createTestSigner>>) => s.token({})],
    ['with a malformed tenant', (s: Awaited<ReturnType<typeof createTestSigner>>) => s.token({ tenant: '../etc' })],
  ])('rejects a token %s with 401', async (_label, make) => {
    const signer = await createTestSigner();
    const error = await signer.verifier(await make(signer)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).statusCode).toBe(401);
  });
});
