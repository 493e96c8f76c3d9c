// Who the customer is: a token from the host site's backend, or an anonymous
// visitor whose tokens this origin keeps in localStorage: a short-lived
// access token and the refresh token (30 days) that renews it, so a
// visitor who comes back tomorrow is still the same customer.
import { Api, ApiError, tokenFresh, type Tokens } from '../lib';

const VISITOR_KEY = 'kefu.visitor';

/** A visitor's tokens; `token` may have expired while `refresh_token` is good. */
export interface Visitor {
  token: string;
  refresh_token?: string;
}

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null; // blocked third-party storage (SecurityError)
  }
}

/** Either token still good for a minute. */
function usable(v: Visitor): boolean {
  return tokenFresh(v.token) || tokenFresh(v.refresh_token);
}

/**
 * The remembered visitor: from this origin's storage, else the copy the
 * host page keeps for us (`hostCopy`: a refresh token, or an access token
 * from before refresh tokens), if either is still good.
 */
export function storedVisitor(hostCopy?: string): Visitor | null {
  try {
    const raw = storage()?.getItem(VISITOR_KEY);
    const v = raw ? (JSON.parse(raw) as Partial<Visitor>) : null;
    if (v && typeof v.token === 'string') {
      const stored: Visitor = { token: v.token };
      if (typeof v.refresh_token === 'string') stored.refresh_token = v.refresh_token;
      if (usable(stored)) return stored;
    }
  } catch {
    // unreadable: fall through
  }
  if (!hostCopy || !tokenFresh(hostCopy)) return null;
  return isRefreshToken(hostCopy) ? { token: '', refresh_token: hostCopy } : { token: hostCopy };
}

function isRefreshToken(token: string): boolean {
  try {
    const part = token.split('.')[1] ?? '';
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    return (JSON.parse(atob(b64)) as { typ?: unknown }).typ === 'refresh';
  } catch {
    return false;
  }
}

/** What the host page keeps for us: the longest-lived token. */
export function hostCopyOf(v: Visitor): string {
  return v.refresh_token ?? v.token;
}

function remember(v: Tokens): Visitor {
  const visitor: Visitor = { token: v.token };
  if (v.refresh_token) visitor.refresh_token = v.refresh_token;
  try {
    storage()?.setItem(VISITOR_KEY, JSON.stringify({ ...visitor, user_id: v.user_id }));
  } catch {
    // storage full or blocked: the visitor lasts for this page only
  }
  return visitor;
}

export function dropVisitor(): void {
  try {
    storage()?.removeItem(VISITOR_KEY);
  } catch {
    // blocked
  }
}

/** A new anonymous customer, remembered for this origin. */
export async function newVisitor(name?: string): Promise<Visitor> {
  return remember(await Api.visitor('', name));
}

/** Fresh tokens for a remembered visitor; ApiError 401 once they are signed out. */
export async function renewVisitor(v: Visitor): Promise<Visitor> {
  if (!v.refresh_token) throw new ApiError(401, 'unauthorized', 'no refresh token');
  return remember(await Api.refresh('', v.refresh_token));
}

/** A remembered visitor ready to connect: renewed first if the access token is stale. */
export async function resumeVisitor(v: Visitor): Promise<Visitor> {
  return tokenFresh(v.token) ? v : renewVisitor(v);
}

/** Small JSON values in localStorage that tolerate blocked storage. */
export function loadJson<T>(key: string, fallback: T): T {
  try {
    const raw = storage()?.getItem(key);
    return raw ? (JSON.parse(raw) as T) : fallback;
  } catch {
    return fallback;
  }
}

export function saveJson(key: string, value: unknown): void {
  try {
    storage()?.setItem(key, JSON.stringify(value));
  } catch {
    // ignore
  }
}
