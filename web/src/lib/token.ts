// Reading a token's claims in the browser: only to know when to renew it.
// The server checks the signature; nothing here trusts the claims.

/** The `exp` claim of a JWT in ms since the epoch, or null if unreadable. */
export function tokenExpiry(token: string): number | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const payload = JSON.parse(atob(b64)) as { exp?: unknown };
    return typeof payload.exp === 'number' ? payload.exp * 1000 : null;
  } catch {
    return null;
  }
}

/** Usable for at least another `marginMs` (default a minute). */
export function tokenFresh(token: string | undefined | null, nowMs = Date.now(), marginMs = 60_000): boolean {
  const exp = token ? tokenExpiry(token) : null;
  return exp !== null && exp > nowMs + marginMs;
}

/**
 * What /api/visitor, /api/login and /api/refresh give: a short-lived
 * access token and the refresh token that buys the next one.
 */
export interface Tokens {
  user_id: string;
  name: string | null;
  token: string;
  /** Seconds the access token lives. */
  expires_in?: number;
  refresh_token?: string;
}
