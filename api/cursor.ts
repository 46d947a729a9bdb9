/**
 * Opaque page cursors of the list routes: the position of a page's last item as JSON, base64url-encoded. A cursor is
 * only ever read back through the route's own check, so a made-up or damaged one is a 400, never a query.
 */
import { badRequest } from './errors.js';

/** The cursor of `position`. */
export function encodeCursor(position: unknown): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

/**
 * The position `cursor` names, as `accept` reads it from the decoded JSON (undefined: not a position of this list).
 * @throws 400 when the cursor was not returned by this API.
 */
export function decodeCursor<T>(cursor: string, accept: (value: unknown) => T | undefined): T {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  const position = value === undefined ? undefined : accept(value);
  if (position === undefined) throw badRequest('cursor is not a cursor returned by this API');
  return position;
}
