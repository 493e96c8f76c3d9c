// The signed-in agent: the tokens from /api/login, kept in localStorage
// while either still works (the access token for an hour, the refresh
// token that renews it for 30 days), and nowhere else.
import { Api, ApiError, tokenExpiry } from '../lib';

export { tokenExpiry };

export interface AgentSession {
  token: string;
  user_id: string;
  name: string;
  /** Buys the next access token; absent in sessions saved before refresh tokens. */
  refresh_token?: string;
}

const KEY = 'kefu.agent.session';

/** Either token still valid at `now`. */
function alive(s: AgentSession, now: number): boolean {
  return [s.token, s.refresh_token].some((t) => {
    const exp = t ? tokenExpiry(t) : null;
    return exp !== null && exp > now;
  });
}

export function loadSession(now = Date.now(), storage: Pick<Storage, 'getItem' | 'removeItem'> = localStorage): AgentSession | null {
  try {
    const s = JSON.parse(storage.getItem(KEY) ?? 'null') as AgentSession | null;
    if (!s || typeof s.token !== 'string' || typeof s.user_id !== 'string') return null;
    const session: AgentSession = { token: s.token, user_id: s.user_id, name: typeof s.name === 'string' ? s.name : s.user_id };
    if (typeof s.refresh_token === 'string') session.refresh_token = s.refresh_token;
    if (!alive(session, now)) {
      storage.removeItem(KEY);
      return null;
    }
    return session;
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

/** New tokens for `s`, saved; ApiError 401 once the agent was signed out or disabled. */
export async function renewSession(s: AgentSession): Promise<AgentSession> {
  if (!s.refresh_token) throw new ApiError(401, 'unauthorized', 'no refresh token');
  const r = await Api.refresh('', s.refresh_token);
  const next: AgentSession = { token: r.token, user_id: r.user_id, name: r.name || s.name };
  if (r.refresh_token) next.refresh_token = r.refresh_token;
  saveSession(next);
  return next;
}
