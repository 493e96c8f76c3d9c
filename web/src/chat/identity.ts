// Who the customer is: a token from the host site's backend, or an anonymous
// visitor whose token this origin keeps in localStorage until it expires.
import { Api } from '../lib';

const VISITOR_KEY = 'kefu.visitor';

/** The `exp` claim (seconds) of a JWT, or null if it cannot be read. */
export function jwtExp(token: string): number | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = JSON.parse(atob(b64.padEnd(b64.length + ((4 - (b64.length % 4)) % 4), '=')));
    return typeof json.exp === 'number' ? json.exp : null;
  } catch {
    return null;
  }
}

/** Usable for at least another minute. */
export function tokenFresh(token: string, nowMs = Date.now()): boolean {
  const exp = jwtExp(token);
  return exp !== null && exp * 1000 > nowMs + 60_000;
}

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null; // blocked third-party storage (SecurityError)
  }
}

/**
 * The remembered visitor token: from this origin's storage, else the copy
 * the host page keeps for us (`hostCopy`), if it has not expired.
 */
export function storedVisitor(hostCopy?: string): string | null {
  try {
    const raw = storage()?.getItem(VISITOR_KEY);
    const v = raw ? (JSON.parse(raw) as { token?: unknown }) : null;
    if (v && typeof v.token === 'string' && tokenFresh(v.token)) return v.token;
  } catch {
    // unreadable: fall through
  }
  return hostCopy && tokenFresh(hostCopy) ? hostCopy : null;
}

export function dropVisitor(): void {
  try {
    storage()?.removeItem(VISITOR_KEY);
  } catch {
    // blocked
  }
}

/** A new anonymous customer, remembered for this origin. */
export async function newVisitor(name?: string): Promise<string> {
  const v = await Api.visitor('', name);
  try {
    storage()?.setItem(VISITOR_KEY, JSON.stringify({ token: v.token, user_id: v.user_id }));
  } catch {
    // storage full or blocked: the visitor lasts for this page only
  }
  return v.token;
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
