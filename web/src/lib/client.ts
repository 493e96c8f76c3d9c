// The WebSocket side of the contract (docs/protocol.md §1-§5): one
// authenticated connection that survives network changes, sends that are
// never lost or doubled, and pushed messages confirmed and deduplicated.

import { Api, ApiError } from './api';
import { Backoff } from './backoff';
import { merge, same, toChat } from './conversation';
import { Emitter } from './emitter';
import { tokenExpiry } from './token';
import type { Action, Category, ChatMessage, ConnectionState, Draft, Frame, Message, Session, WireError } from './types';

/** What the client needs of a WebSocket; the browser's fits. */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
}

export interface ClientOptions {
  /** '' means same origin; else e.g. 'http://127.0.0.1:8080'. */
  baseUrl: string;
  token: string;
  /** Sent in the auth frame's ext.device. */
  device?: string;
  // Test seams; they default to the browser's.
  WebSocket?: { new (url: string): WebSocketLike };
  fetch?: typeof fetch;
  /** The local clock, ms. */
  now?: () => number;
  /** For jitter. */
  random?: () => number;
  events?: { window?: EventTarget; document?: EventTarget & { visibilityState?: string } };
  /** Default 25 000; the server closes a connection idle for 60 s. */
  heartbeatMs?: number;
  /** Resend an unacked send once on the same connection after this; default 10 000. */
  ackTimeoutMs?: number;
  /**
   * A new access token (from a refresh token). Called a minute before the
   * token expires, when the server refuses it (expired while offline), and
   * when an HTTP call gets 401. Reject with ApiError 401 or 403 when the
   * user is signed out for good; any other rejection is retried later.
   */
  renew?: () => Promise<string>;
}

export interface ClientEvents {
  state: ConnectionState;
  /** After every successful (re)auth. */
  auth: Session;
  /** A new message, or a changed copy of one already emitted (same key). */
  message: ChatMessage;
  read: { task_id: number; quote: number; from: string };
  revoke: { task_id: number; quote: number };
  delete: { task_id?: number; quote: number };
  typing: { task_id: number; from: string };
  /** Stored system messages (toasts, assess); also emitted as 'message'. */
  system: Message;
  /** Auth refused (4401): the client has stopped for good. */
  unauthorized: WireError;
  /**
   * Error acks not tied to a send, with the refused frame's action (read,
   * revoke and delete also reject their promise); also a failed offline pull.
   */
  error: WireError & { action?: Action };
}

interface PendingSend {
  msg: ChatMessage;
  timer?: ReturnType<typeof setTimeout>;
  /** Spaces resends after transient errors (unavailable, rate_limited, internal). */
  retry?: Backoff;
}

interface PendingOp {
  frame: Frame;
  resolve: () => void;
  reject: (e: ApiError) => void;
  done?: () => void;
}

const TRANSIENT = new Set(['unavailable', 'rate_limited', 'internal']);
const RECEIVE_DELAY_MS = 50;
const RECEIVE_MAX = 500; // ids per receive frame (protocol limit)
const OFFLINE_PAGE = 500; // the server's maximum page
const TYPING_MS = 2000;
const KNOWN_MAX = 5000; // messages remembered for dedup; oldest forgotten first
const AUTH_FAILED = 4401;
const RENEW_AHEAD_MS = 60_000; // renew this long before the token expires
const RENEW_RETRY_MS = 15_000; // after a renewal that could not reach the server

/** A client_msg_id. randomUUID exists only in secure contexts (https, localhost). */
function uuid(): string {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  const b = new Uint8Array(16);
  if (typeof c?.getRandomValues === 'function') c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function wsUrl(baseUrl: string): string {
  const abs = /^https?:\/\//i.test(baseUrl) ? baseUrl : `${globalThis.location?.origin ?? ''}${baseUrl}`;
  return `${abs.replace(/^http/i, 'ws').replace(/\/+$/, '')}/ws`;
}

export class KefuClient {
  readonly api: Api;
  private readonly ev = new Emitter<ClientEvents>();
  private readonly o: ClientOptions & Required<Pick<ClientOptions, 'now' | 'random' | 'heartbeatMs' | 'ackTimeoutMs'>>;
  private _state: ConnectionState = 'connecting';
  private _session: Session | null = null;
  private offset = 0;

  private ws: WebSocketLike | null = null;
  /** Generation of the current socket: callbacks of older ones are ignored. */
  private conn = 0;
  private authed = false;
  private everAuthed = false;
  private stopped = false;
  private listening = false;
  private readonly backoff: Backoff;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private watchdog?: ReturnType<typeof setTimeout>;
  private heartbeat?: ReturnType<typeof setInterval>;
  private authSentAt = 0;
  /** Local send times of heartbeats not yet answered (answers come in order). */
  private beats: number[] = [];

  private readonly sends = new Map<string, PendingSend>();
  private readonly ops = new Map<string, PendingOp>();
  private readonly known = new Map<number, ChatMessage>();
  private readonly receipts = new Set<number>();
  private receiptTimer?: ReturnType<typeof setTimeout>;
  private readonly typingAt = new Map<string, number>();
  /** A customer's current task, for typing(). */
  private lastTask?: number;
  private unlisten: (() => void)[] = [];
  private renewing?: Promise<boolean>;
  private renewTimer?: ReturnType<typeof setTimeout>;
  /** A refused token was renewed since the last auth: a second refusal is final. */
  private renewedAfterRefusal = false;

  constructor(opts: ClientOptions) {
    this.o = {
      now: () => Date.now(),
      random: Math.random,
      heartbeatMs: 25_000,
      ackTimeoutMs: 10_000,
      ...opts,
    };
    this.backoff = new Backoff(this.o.random);
    this.api = new Api(opts.baseUrl, () => this.o.token, opts.fetch, () => this.renewToken().catch(() => false));
  }

  on<K extends keyof ClientEvents>(type: K, fn: (e: ClientEvents[K]) => void): () => void {
    return this.ev.on(type, fn);
  }

  get state(): ConnectionState {
    return this._state;
  }

  get session(): Session | null {
    return this._session;
  }

  /** Server time now, from the offset measured at auth and on every heartbeat. */
  serverNow(): number {
    return this.o.now() + this.offset;
  }

  /** A stored message (history, contacts) in the shape the apps render. */
  toChat(m: Message): ChatMessage {
    return toChat(m, this._session?.user_id);
  }

  connect(): void {
    if (this.stopped || this.ws || this.reconnectTimer !== undefined) return;
    this.listen();
    this.open();
  }

  /**
   * Swaps in a new token from `renew`, once for concurrent callers. True once
   * it is in use; false when the user is signed out (401, 403) or there is
   * no `renew`; rejects when the server could not be reached.
   */
  renewToken(): Promise<boolean> {
    const renew = this.o.renew;
    if (!renew || this.stopped) return Promise.resolve(false);
    this.renewing ??= renew()
      .then(
        (token) => {
          this.o.token = token;
          this.scheduleRenew();
          return true;
        },
        (e: unknown) => {
          if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return false;
          throw e;
        },
      )
      .finally(() => {
        this.renewing = undefined;
      });
    return this.renewing;
  }

  /** Renews a minute before the token expires (an open socket outlives it; HTTP calls do not). */
  private scheduleRenew(): void {
    clearTimeout(this.renewTimer);
    const exp = this.o.renew ? tokenExpiry(this.o.token) : null;
    if (exp === null || this.stopped) return;
    const wait = Math.min(2 ** 31 - 1, Math.max(1000, exp - RENEW_AHEAD_MS - this.serverNow()));
    this.renewTimer = setTimeout(() => {
      // Unreachable: try again in a while, not every second of the last minute.
      this.renewToken().catch(() => {
        this.renewTimer = setTimeout(() => this.scheduleRenew(), RENEW_RETRY_MS);
      });
    }, wait);
  }

  /** Final: no reconnect. Pending read/revoke/delete promises reject. */
  close(): void {
    if (this._state !== 'unauthorized') this.setState('offline');
    this.stop(new ApiError(0, 'unavailable', 'client closed'));
  }

  // ---- sending ----

  /** Queues a message; it is sent now if connected, else after the next auth. */
  send(draft: Draft): ChatMessage {
    const id = uuid();
    const msg = this.clean({
      ...draft,
      key: id,
      client_msg_id: id,
      mine: true,
      state: 'sending',
      action: 'send',
      category: this.category(),
      from: this._session?.user_id,
      kind: draft.kind ?? 'text',
      style: draft.style ?? 'normal',
      created_at: Math.round(this.serverNow()), // for display until the ack brings the real one
    });
    const p: PendingSend = { msg };
    this.sends.set(id, p);
    this.ev.emit('message', msg);
    this.transmit(p);
    return msg;
  }

  /** Resends a failed send with the same client_msg_id. */
  retry(key: string): void {
    const p = this.sends.get(key);
    if (!p || p.msg.state !== 'failed') return;
    const msg = { ...p.msg, state: 'sending' as const };
    delete msg.error;
    this.update(p, msg);
    this.transmit(p);
  }

  /** Drops a failed send from pending() (the UI should also remove its bubble). */
  discard(key: string): void {
    const p = this.sends.get(key);
    if (p?.msg.state === 'failed') this.sends.delete(key);
  }

  /** Own sends not yet acked (sending or failed), in send order. */
  pending(): ChatMessage[] {
    return [...this.sends.values()].map((p) => p.msg);
  }

  read(taskId: number, upTo: number): Promise<void> {
    return this.op({ action: 'read', task_id: taskId, quote: upTo });
  }

  revoke(id: number): Promise<void> {
    return this.op({ action: 'revoke', quote: id }, () => this.patchKnown(id, { is_revoke: true }));
  }

  delete(id: number): Promise<void> {
    return this.op({ action: 'delete', quote: id }, () => {
      // The server tells only the user's *other* devices; tell this one too.
      const m = this.patchKnown(id, { is_delete: true });
      this.ev.emit('delete', m ? { task_id: m.task_id, quote: id } : { quote: id });
    });
  }

  /** At most one frame per 2 s per target. A customer may omit the task. */
  typing(task?: { task_id?: number; to?: string }): void {
    if (!this.authed) return;
    const taskId = task?.task_id ?? (task?.to ? undefined : this.lastTask);
    if (taskId === undefined && !task?.to) return; // the server would refuse it
    const target = taskId !== undefined ? `t${taskId}` : `u${task!.to}`;
    const now = this.o.now();
    if (now - (this.typingAt.get(target) ?? -Infinity) < TYPING_MS) return;
    this.typingAt.set(target, now);
    this.raw({ category: this.category(), action: 'typing', task_id: taskId, to: task?.to });
  }

  // ---- connection ----

  private open(): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const gen = ++this.conn;
    this.authed = false;
    if (this._state !== 'offline') this.setState(this.everAuthed ? 'reconnecting' : 'connecting');
    let ws: WebSocketLike;
    try {
      const WS = this.o.WebSocket ?? (globalThis.WebSocket as unknown as { new (url: string): WebSocketLike });
      ws = new WS(wsUrl(this.o.baseUrl)); // never a token in the URL: it would land in logs
    } catch {
      this.lost();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (gen !== this.conn) return;
      this.authSentAt = this.o.now();
      this.raw({ action: 'auth', content: this.o.token, ...(this.o.device ? { ext: { device: this.o.device } } : {}) });
    };
    ws.onmessage = (e) => {
      if (gen !== this.conn) return;
      this.armWatchdog();
      let f: Frame;
      try {
        f = JSON.parse(String(e.data)) as Frame;
      } catch {
        return;
      }
      this.onFrame(f);
    };
    ws.onclose = (e) => {
      if (gen === this.conn) this.lost(e.code);
    };
    ws.onerror = () => {}; // a close follows
    this.armWatchdog();
  }

  /** The socket is gone (closed, dead or refused): tidy up and plan the next one. */
  private lost(code?: number): void {
    this.teardown();
    if (code === AUTH_FAILED) return this.authRefused({ code: 'unauthorized', message: 'authentication failed' });
    if (this.stopped) return;
    if (this._state !== 'offline') this.setState(this.everAuthed ? 'reconnecting' : 'connecting');
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.open(), this.backoff.next());
  }

  private teardown(): void {
    const ws = this.ws;
    this.ws = null;
    this.authed = false;
    this.conn++;
    clearTimeout(this.watchdog);
    clearInterval(this.heartbeat);
    this.beats = [];
    // Unacked sends are resent after the next auth; their timers belong to this socket.
    for (const p of this.sends.values()) clearTimeout(p.timer);
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        // already closed
      }
    }
  }

  /** For good: nothing will answer the pending read/revoke/delete, so they reject. */
  private stop(why: ApiError): void {
    this.stopped = true;
    for (const op of this.ops.values()) op.reject(why);
    this.ops.clear();
    this.teardown();
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.receiptTimer);
    clearTimeout(this.renewTimer);
    this.reconnectTimer = this.receiptTimer = undefined;
    for (const off of this.unlisten) off();
    this.unlisten = [];
  }

  /** The token was refused (expired, signed out): with `renew`, try once with a new one. */
  private authRefused(err: WireError): void {
    // Only an expired or signed-out token is worth renewing; another refusal
    // (this token's user id belongs to another role) would refuse it again.
    if (!this.o.renew || this.renewedAfterRefusal || err.code !== 'unauthorized') return this.refuse(err);
    this.teardown();
    const gen = this.conn;
    const current = () => !this.stopped && gen === this.conn;
    this.renewToken().then(
      (renewed) => {
        if (!current()) return;
        if (!renewed) return this.refuse(err);
        this.renewedAfterRefusal = true;
        this.open();
      },
      // Unreachable: reconnect later; the old token is refused again and renewed then.
      () => current() && this.lost(),
    );
  }

  private refuse(err: WireError): void {
    this.stop(ApiError.fromWire(err));
    this.setState('unauthorized');
    this.ev.emit('unauthorized', err);
  }

  /** No frame at all for two heartbeats: the socket is dead even if the browser has not noticed. */
  private armWatchdog(): void {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.lost(), 2 * this.o.heartbeatMs);
  }

  /** Reconnect now instead of waiting out the back-off. */
  private kick(): void {
    if (this.stopped || this.authed) return;
    this.teardown();
    this.open();
  }

  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    const w = this.o.events?.window ?? (typeof window !== 'undefined' ? window : undefined);
    const d = this.o.events?.document ?? (typeof document !== 'undefined' ? document : undefined);
    const on = (t: EventTarget | undefined, type: string, fn: () => void) => {
      if (!t) return;
      t.addEventListener(type, fn);
      this.unlisten.push(() => t.removeEventListener(type, fn));
    };
    on(w, 'online', () => {
      if (this.stopped) return;
      if (this._state === 'offline') this.setState(this.everAuthed ? 'reconnecting' : 'connecting');
      this.kick();
    });
    on(w, 'offline', () => {
      if (this.stopped) return;
      // The socket is most likely dead; drop it so sends queue instead of
      // vanishing into it. Keep retrying quietly in case the browser is wrong.
      this.setState('offline');
      this.lost();
    });
    on(d, 'visibilitychange', () => {
      if (this.stopped || d?.visibilityState !== 'visible') return;
      // Back from a sleeping tab: reconnect now, or probe the socket (and the clock).
      if (this.authed) this.beat();
      else this.kick();
    });
  }

  private setState(s: ConnectionState): void {
    if (this._state === s) return;
    this._state = s;
    this.ev.emit('state', s);
  }

  private raw(f: Frame): void {
    try {
      this.ws?.send(JSON.stringify(f));
    } catch {
      // closing; the close handler takes over
    }
  }

  private beat(): void {
    this.beats.push(this.o.now());
    if (this.beats.length > 8) this.beats.shift();
    this.raw({ category: 'heartbeat' });
  }

  /** NTP-style: the server stamped its time half-way through the round trip. */
  private clock(sentAt: number, serverMs: number): void {
    this.offset = Math.round(serverMs - (sentAt + this.o.now()) / 2);
  }

  private category(): Category | undefined {
    if (!this._session) return undefined;
    return this._session.role === 'customer' ? 'customer' : 'manager';
  }

  // ---- incoming ----

  private onFrame(f: Frame): void {
    switch (f.category) {
      case 'ack':
        return this.onAck(f);
      case 'heartbeat': {
        const sent = this.beats.shift();
        if (sent !== undefined && f.created_at) this.clock(sent, f.created_at);
        return;
      }
      case 'system':
      case 'customer':
      case 'manager':
        if (f.category === 'system' && f.action && f.action !== 'send') return this.onNotice(f);
        if (typeof f.id === 'number') {
          this.receipt(f.id); // also for duplicates: a retransmission means our receive was lost
          this.ingest(f as Message);
        }
    }
  }

  private onAck(f: Frame): void {
    const err = (f.ext?.error as WireError | undefined) ?? undefined;
    const cmid = f.client_msg_id;
    if (f.action === 'auth') return err ? this.authRefused(err) : this.onAuth(f);
    if (f.action === 'send') {
      const p = cmid !== undefined ? this.sends.get(cmid) : undefined;
      if (p) return this.onSendAck(p, f, err);
    } else {
      const op = cmid !== undefined ? this.ops.get(cmid) : undefined;
      if (op) {
        this.ops.delete(cmid!);
        if (err) op.reject(ApiError.fromWire(err));
        else {
          op.done?.();
          op.resolve();
        }
      }
    }
    if (err) this.ev.emit('error', { ...err, action: f.action });
  }

  private onAuth(f: Frame): void {
    const ext = (f.ext ?? {}) as Partial<Session>;
    this._session = {
      user_id: String(ext.user_id ?? ''),
      role: ext.role ?? 'customer',
      device: String(ext.device ?? ''),
      conn_id: String(ext.conn_id ?? ''),
    };
    if (f.created_at) this.clock(this.authSentAt, f.created_at);
    this.authed = true;
    this.everAuthed = true;
    this.renewedAfterRefusal = false;
    this.backoff.reset();
    this.scheduleRenew();
    const gen = this.conn;
    this.heartbeat = setInterval(() => this.beat(), this.o.heartbeatMs);
    this.setState('connected');
    this.ev.emit('auth', this._session);
    if (gen !== this.conn) return; // a listener closed us
    // Everything unacked goes again, in order, with its id; the server dedups.
    for (const p of this.sends.values()) if (p.msg.state === 'sending') this.transmit(p);
    for (const op of this.ops.values()) this.raw(this.opFrame(op.frame));
    this.flushReceipts();
    void this.pullOffline(gen);
  }

  private onSendAck(p: PendingSend, f: Frame, err: WireError | undefined): void {
    clearTimeout(p.timer);
    if (err && TRANSIENT.has(err.code)) {
      // The server is struggling, not refusing: keep 'sending' and try again later.
      p.retry ??= new Backoff(this.o.random, 1000, 30_000);
      p.timer = setTimeout(() => this.transmit(p), p.retry.next());
      return;
    }
    if (err) return this.update(p, { ...p.msg, state: 'failed', error: err });
    this.sends.delete(p.msg.key);
    const msg: ChatMessage = { ...p.msg, state: 'sent', category: this.category(), from: this._session?.user_id };
    if (f.id !== undefined) msg.id = f.id;
    if (f.task_id !== undefined) msg.task_id = f.task_id;
    if (f.created_at !== undefined) msg.created_at = f.created_at;
    this.store(this.clean(msg));
  }

  private onNotice(f: Frame): void {
    const task_id = f.task_id ?? 0;
    const quote = f.quote ?? 0;
    const from = f.from ?? '';
    switch (f.action) {
      case 'read': {
        // The other side read: own messages are read. The user read on another device: theirs are.
        const byOther = from !== this._session?.user_id;
        for (const m of [...this.known.values()]) {
          if (m.task_id !== task_id || m.id! > quote || m.mine !== byOther) continue;
          this.store(m.mine ? { ...m, is_read: true, state: 'read' } : { ...m, is_read: true });
        }
        return this.ev.emit('read', { task_id, quote, from });
      }
      case 'revoke':
        this.patchKnown(quote, { is_revoke: true });
        return this.ev.emit('revoke', { task_id, quote });
      case 'delete':
        this.patchKnown(quote, { is_delete: true });
        return this.ev.emit('delete', { task_id, quote });
      case 'typing':
        return this.ev.emit('typing', { task_id, from });
    }
  }

  /** A stored message from a push or the offline list. */
  private ingest(f: Message): void {
    let m = this.toChat(f);
    if (this._session?.role === 'customer' && m.category !== 'system') this.lastTask = m.task_id;
    // Our own send, seen before its ack (e.g. the ack was lost with the socket): it completes the send.
    const p = m.mine && m.client_msg_id !== undefined ? this.sends.get(m.client_msg_id) : undefined;
    if (p) {
      clearTimeout(p.timer);
      this.sends.delete(p.msg.key);
      m = { ...m, key: p.msg.key };
    }
    this.store(m);
  }

  /** Emits a message if it is new or changed. */
  private store(next: ChatMessage): void {
    const id = next.id!;
    const old = this.known.get(id);
    const m = old ? merge(old, next) : next;
    if (old && same(old, m)) return;
    this.known.delete(id); // re-insert: the Map's order is the forgetting order
    this.known.set(id, m);
    if (this.known.size > KNOWN_MAX) this.known.delete(this.known.keys().next().value!);
    if (this._session?.role === 'customer' && m.mine) this.lastTask = m.task_id;
    this.ev.emit('message', m);
    if (!old && m.category === 'system') this.ev.emit('system', m as Message);
  }

  private patchKnown(id: number, patch: Frame): ChatMessage | undefined {
    const m = this.known.get(id);
    if (m) this.store({ ...m, ...patch });
    return this.known.get(id);
  }

  // ---- frames out ----

  private transmit(p: PendingSend): void {
    if (!this.authed) return; // goes out after the next auth
    clearTimeout(p.timer);
    this.raw(this.sendFrame(p.msg));
    // One more try on this connection if the ack is late; the server dedups
    // by client_msg_id. After that, the next reconnect resends it.
    p.timer = setTimeout(() => {
      if (this.authed && this.sends.get(p.msg.key) === p && p.msg.state === 'sending') this.raw(this.sendFrame(p.msg));
    }, this.o.ackTimeoutMs);
  }

  private sendFrame(m: ChatMessage): Frame {
    const { kind, style, content, url, ext, to, task_id, quote, client_msg_id } = m;
    return { category: this.category(), action: 'send', kind, style, content, url, ext, to, task_id, quote, client_msg_id };
  }

  private op(frame: Frame, done?: () => void): Promise<void> {
    if (this.stopped) return Promise.reject(new ApiError(0, 'unavailable', 'client closed'));
    frame.client_msg_id = uuid(); // matches the ack to this promise
    return new Promise((resolve, reject) => {
      this.ops.set(frame.client_msg_id!, { frame, resolve, reject, done });
      // Else it goes after the next auth (reads and deletes are idempotent).
      if (this.authed) this.raw(this.opFrame(frame));
    });
  }

  private opFrame(f: Frame): Frame {
    return { category: this.category(), ...f };
  }

  private receipt(id: number): void {
    this.receipts.add(id);
    this.receiptTimer ??= setTimeout(() => {
      this.receiptTimer = undefined;
      this.flushReceipts();
    }, RECEIVE_DELAY_MS);
  }

  private flushReceipts(): void {
    if (!this.authed) return; // kept for the next connection
    const ids = [...this.receipts];
    this.receipts.clear();
    for (let i = 0; i < ids.length; i += RECEIVE_MAX) this.raw({ category: 'receive', ext: { ids: ids.slice(i, i + RECEIVE_MAX) } });
  }

  /** After every auth: whatever was not delivered while we were away. Nothing is re-pushed. */
  private async pullOffline(gen: number): Promise<void> {
    const wait = new Backoff(this.o.random, 1000, 30_000);
    let after = 0; // from 0 each time: a message can become undelivered later than newer ones
    while (gen === this.conn) {
      let page: Message[];
      try {
        page = await this.api.offline(after, OFFLINE_PAGE);
      } catch (e) {
        const err = e as ApiError;
        if (gen !== this.conn) return;
        if (err.status >= 400 && err.status < 500 && err.status !== 429) {
          this.ev.emit('error', { code: err.code, message: err.message } as WireError);
          return;
        }
        await new Promise((r) => setTimeout(r, wait.next()));
        continue;
      }
      if (gen !== this.conn) return; // the next connection pulls again
      for (const m of page) {
        this.receipt(m.id);
        this.ingest(m);
      }
      if (page.length < OFFLINE_PAGE) return;
      after = page[page.length - 1].id;
    }
  }

  private update(p: PendingSend, msg: ChatMessage): void {
    p.msg = msg;
    this.ev.emit('message', msg);
  }

  /** Drops undefined fields, so that messages compare and serialize cleanly. */
  private clean(m: ChatMessage): ChatMessage {
    for (const k of Object.keys(m) as (keyof ChatMessage)[]) if (m[k] === undefined) delete m[k];
    return m;
  }
}
