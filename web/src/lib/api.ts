// The HTTP side of the contract (docs/protocol.md §7). Every call carries
// the token in an Authorization header, never in the URL, so it stays out of
// server logs, proxies and the browser history.

import type { Tokens } from './token';
import type { Agent, Contact, CustomerInfo, ErrorCode, HistoryPage, Message, QuickReply, TaskSummary, Upload, WireError } from './types';

const STATUS: Record<string, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
};

/**
 * A refused HTTP call or WebSocket frame. `status` is the HTTP status (for a
 * WebSocket error ack, the status its code has over HTTP); 0 means the
 * request never got an answer (network down), with code `unavailable`.
 */
export class ApiError extends Error {
  status: number;
  code: ErrorCode | string;
  /** Seconds to wait, from a Retry-After header (429, 503). */
  retryAfter?: number;

  constructor(status: number, code: ErrorCode | string, message: string, retryAfter?: number) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    if (retryAfter !== undefined) this.retryAfter = retryAfter;
  }

  static fromWire(e: WireError): ApiError {
    return new ApiError(STATUS[e.code] ?? 0, e.code, e.message);
  }
}

/** Retry-After is either delta-seconds or an HTTP date. */
function parseRetryAfter(v: string | null): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

function errorFrom(status: number, text: string, retryAfter: string | null): ApiError {
  let err: Partial<WireError> | undefined;
  try {
    err = (JSON.parse(text) as { error?: WireError }).error;
  } catch {
    // A proxy's HTML error page: fall back to the status.
  }
  const code = err?.code ?? Object.keys(STATUS).find((k) => STATUS[k] === status) ?? `http_${status}`;
  return new ApiError(status, code, err?.message ?? `HTTP ${status}`, parseRetryAfter(retryAfter));
}

async function call<T>(f: typeof fetch, url: string, init: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await f(url, init);
  } catch (e) {
    throw new ApiError(0, 'unavailable', e instanceof Error ? e.message : 'network error');
  }
  const text = await res.text();
  if (!res.ok) throw errorFrom(res.status, text, res.headers.get('Retry-After'));
  return (text ? JSON.parse(text) : undefined) as T;
}

function join(base: string, path: string): string {
  return base.replace(/\/+$/, '') + path;
}

function query(params: Record<string, string | number | undefined>): string {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

// Bound lazily: calling an unbound `window.fetch` throws "Illegal invocation".
const globalFetch: typeof fetch = (input, init) => fetch(input, init);

function json(body: unknown): RequestInit {
  return { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
}

export class Api {
  private readonly base: string;
  private readonly token: () => string;
  private readonly f: typeof fetch;
  private readonly renew?: () => Promise<boolean>;

  /**
   * `token` may be a function, so that a client can swap tokens; with
   * `renew`, a call refused with 401 is tried once more if it renews the
   * token (an access token that expired while the tab slept).
   */
  constructor(baseUrl: string, token: string | (() => string), fetchImpl?: typeof fetch, renew?: () => Promise<boolean>) {
    this.base = baseUrl;
    this.token = typeof token === 'function' ? token : () => token;
    this.f = fetchImpl ?? globalFetch;
    if (renew) this.renew = renew;
  }

  /** An anonymous customer (201). */
  static visitor(baseUrl: string, name?: string, fetchImpl?: typeof fetch): Promise<Tokens> {
    return call(fetchImpl ?? globalFetch, join(baseUrl, '/api/visitor'), json(name ? { name } : {}));
  }

  /** An agent's tokens; a wrong password is ApiError 401, a disabled account 403. */
  static login(baseUrl: string, username: string, password: string, fetchImpl?: typeof fetch): Promise<Tokens & { name: string }> {
    return call(fetchImpl ?? globalFetch, join(baseUrl, '/api/login'), json({ username, password }));
  }

  /** New tokens for a refresh token; ApiError 401 once the user signed out or it expired. */
  static refresh(baseUrl: string, refreshToken: string, fetchImpl?: typeof fetch): Promise<Tokens> {
    return call(fetchImpl ?? globalFetch, join(baseUrl, '/api/refresh'), json({ refresh_token: refreshToken }));
  }

  /** Signs the caller out on every device: their tokens so far stop working. */
  async logout(): Promise<void> {
    await this.req('POST', '/api/logout', {});
  }

  private async req<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await this.once<T>(method, path, body);
    } catch (e) {
      const renewed = e instanceof ApiError && e.status === 401 && this.renew && (await this.renew().catch(() => false));
      if (!renewed) throw e;
      return this.once<T>(method, path, body);
    }
  }

  private once<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token()}` };
    const init: RequestInit = { method, headers };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return call<T>(this.f, join(this.base, path), init);
  }

  /** The caller's tasks (a customer's own; an agent may name a customer), newest first. */
  async tasks(customer?: string): Promise<TaskSummary[]> {
    return (await this.req<{ tasks: TaskSummary[] }>('GET', `/api/tasks${query({ customer })}`)).tasks;
  }

  /** One page of a task's history, oldest first; page back with `next_before`. */
  history(taskId: number, before?: number, limit?: number): Promise<HistoryPage> {
    return this.req('GET', `/api/tasks/${taskId}/messages${query({ before, limit })}`);
  }

  /** Undelivered messages in id order. Reading them confirms nothing. */
  async offline(after?: number, limit?: number): Promise<Message[]> {
    return (await this.req<{ messages: Message[] }>('GET', `/api/offline${query({ after, limit })}`)).messages;
  }

  unread(): Promise<{ total: number; by_task: Record<string, number> }> {
    return this.req('GET', '/api/unread');
  }

  async contacts(q?: string): Promise<Contact[]> {
    return (await this.req<{ contacts: Contact[] }>('GET', `/api/contacts${query({ q })}`)).contacts;
  }

  async agents(): Promise<Agent[]> {
    return (await this.req<{ agents: Agent[] }>('GET', '/api/agents')).agents;
  }

  async setStatus(status: 'available' | 'away'): Promise<void> {
    await this.req('PUT', '/api/agents/me/status', { status });
  }

  async transfer(taskId: number, toAgent: string, reason?: string): Promise<void> {
    await this.req('POST', `/api/tasks/${taskId}/transfer`, reason ? { to_agent: toAgent, reason } : { to_agent: toAgent });
  }

  async end(taskId: number): Promise<void> {
    await this.req('POST', `/api/tasks/${taskId}/end`);
  }

  /** A customer's details (agents). */
  customer(id: string): Promise<CustomerInfo> {
    return this.req('GET', `/api/customers/${encodeURIComponent(id)}`);
  }

  /** How many tasks wait for an agent, across the system. */
  async queue(): Promise<number> {
    return (await this.req<{ waiting: number }>('GET', '/api/queue')).waiting;
  }

  /** The caller's saved answers, sorted by title. */
  async quickReplies(): Promise<QuickReply[]> {
    return (await this.req<{ quick_replies: QuickReply[] }>('GET', '/api/quick-replies')).quick_replies;
  }

  addQuickReply(title: string, content: string): Promise<QuickReply> {
    return this.req('POST', '/api/quick-replies', { title, content });
  }

  updateQuickReply(id: number, title: string, content: string): Promise<QuickReply> {
    return this.req('PUT', `/api/quick-replies/${id}`, { title, content });
  }

  async deleteQuickReply(id: number): Promise<void> {
    await this.req('DELETE', `/api/quick-replies/${id}`);
  }

  async rate(taskId: number, score: number, comment?: string): Promise<void> {
    await this.req('POST', `/api/tasks/${taskId}/rating`, comment ? { score, comment } : { score });
  }

  /**
   * Multipart upload, field "file". With `onProgress` it uses
   * XMLHttpRequest, because fetch reports no upload progress.
   */
  upload(file: Blob, name: string, onProgress?: (fraction: number) => void): Promise<Upload> {
    const form = new FormData();
    form.append('file', file, name);
    const url = join(this.base, '/api/upload');
    const auth = `Bearer ${this.token()}`;
    if (!onProgress) return call(this.f, url, { method: 'POST', headers: { Authorization: auth }, body: form });
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', url);
      xhr.setRequestHeader('Authorization', auth);
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          onProgress(1);
          try {
            resolve(JSON.parse(xhr.responseText) as Upload);
          } catch {
            reject(new ApiError(xhr.status, 'internal', 'bad upload reply'));
          }
        } else reject(errorFrom(xhr.status, xhr.responseText, xhr.getResponseHeader('Retry-After')));
      };
      xhr.onerror = () => reject(new ApiError(0, 'unavailable', 'network error'));
      xhr.onabort = () => reject(new ApiError(0, 'unavailable', 'upload aborted'));
      xhr.send(form);
    });
  }
}
