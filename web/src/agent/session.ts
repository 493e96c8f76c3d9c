// The signed-in agent: the token from /api/login, kept in localStorage for
// as long as it is valid (its `exp` claim), and nowhere else.
export interface AgentSession {
  token: string;
  user_id: string;
  name: string;
}

const KEY = 'kefu.agent.session';

/** The token's expiry in ms since the epoch, from its payload; null if unreadable. */
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

export function loadSession(now = Date.now(), storage: Pick<Storage, 'getItem' | 'removeItem'> = localStorage): AgentSession | null {
  try {
    const s = JSON.parse(storage.getItem(KEY) ?? 'null') as AgentSession | null;
    if (!s || typeof s.token !== 'string' || typeof s.user_id !== 'string') return null;
    const exp = tokenExpiry(s.token);
    if (exp === null || exp <= now) {
      storage.removeItem(KEY);
      return null;
    }
    return { token: s.token, user_id: s.user_id, name: typeof s.name === 'string' ? s.name : s.user_id };
  } catch {
    return null;
  }
}

export function saveSession(s: AgentSession, storage: Pick<Storage, 'setItem'> = localStorage): void {
  try {
    storage.setItem(KEY, JSON.stringify(s));
  } catch {
    // private mode: the session lasts as long as the page
  }
}

export function clearSession(storage: Pick<Storage, 'removeItem'> = localStorage): void {
  try {
    storage.removeItem(KEY);
  } catch {
    // nothing kept
  }
}
