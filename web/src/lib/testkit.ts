// Test doubles for the client: a scriptable WebSocket and fetch, no network.
// Only the tests import this file.
import { vi } from 'vitest';
import { KefuClient, type ClientOptions, type WebSocketLike } from './client';
import type { Frame, Message } from './types';

export class FakeSocket implements WebSocketLike {
  sent: Frame[] = [];
  closedWith?: number;
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  readonly url: string;

  constructor(url: string) {
    this.url = url;
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as Frame);
  }
  close(code = 1000): void {
    this.closedWith ??= code;
  }
  open(): void {
    this.onopen?.({} as Event);
  }
  deliver(f: Frame): void {
    this.onmessage?.({ data: JSON.stringify(f) } as MessageEvent);
  }
  /** The server (or the network) closes the socket. */
  drop(code = 1006): void {
    this.onclose?.({ code } as CloseEvent);
  }
  /** Opens and answers the auth frame. */
  auth(user = 'v_me', role = 'customer', createdAt = Date.now()): void {
    this.open();
    this.deliver({ category: 'ack', action: 'auth', created_at: createdAt, ext: { user_id: user, role, device: 'pc', conn_id: 'gateway-1-1' } });
  }
  frames(pred: (f: Frame) => boolean = () => true): Frame[] {
    return this.sent.filter(pred);
  }
  sends(): Frame[] {
    return this.frames((f) => f.action === 'send');
  }
  receivedIds(): number[] {
    return this.frames((f) => f.category === 'receive').flatMap((f) => (f.ext?.ids as number[]) ?? []);
  }
}

export function msg(id: number, over: Partial<Message> = {}): Message {
  return {
    category: 'manager',
    action: 'send',
    style: 'normal',
    kind: 'text',
    id,
    task_id: 7,
    content: `m${id}`,
    from: 'alice',
    to: 'v_me',
    created_at: 1_000 + id,
    is_read: false,
    is_revoke: false,
    is_delete: false,
    ...over,
  };
}

interface Reply {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** A fetch that answers from a route table; unknown paths get an empty offline page. */
export function fakeFetch(route: (url: string, init?: RequestInit) => Reply | undefined = () => undefined) {
  const calls: { url: string; init?: RequestInit }[] = [];
  const f = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    calls.push({ url, init });
    const r = route(url, init) ?? { body: { messages: [] } };
    const status = r.status ?? 200;
    const text = r.body === undefined ? '' : typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
    return {
      ok: status >= 200 && status < 300,
      status,
      headers: new Headers(r.headers ?? {}),
      text: async () => text,
    } as Response;
  });
  return { fetch: f as unknown as typeof fetch, calls };
}

export function setup(opts: Partial<ClientOptions> = {}, route?: Parameters<typeof fakeFetch>[0]) {
  const sockets: FakeSocket[] = [];
  class WS extends FakeSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  const net = fakeFetch(route);
  const win = new EventTarget();
  const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' });
  const rnd = { value: 0.5 };
  const client = new KefuClient({
    baseUrl: 'http://kefu.test',
    token: 'SECRET-TOKEN',
    device: 'pc',
    WebSocket: WS,
    fetch: net.fetch,
    random: () => rnd.value,
    events: { window: win, document: doc },
    ...opts,
  });
  const events: { type: string; e: unknown }[] = [];
  for (const t of ['state', 'auth', 'message', 'read', 'revoke', 'delete', 'typing', 'system', 'unauthorized', 'error'] as const)
    client.on(t, (e) => events.push({ type: t, e }));
  return {
    client,
    sockets,
    last: () => sockets[sockets.length - 1],
    net,
    win,
    doc,
    rnd,
    events,
    of: <T = unknown>(type: string) => events.filter((x) => x.type === type).map((x) => x.e as T),
  };
}

/** Lets timers and promise chains (fake fetch) run. */
export const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms);
