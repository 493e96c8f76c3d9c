// The console's state: one KefuClient, the contact list, one Conversation
// per task, unread counts, the selected conversation's customer, quick
// replies, the queue. Views read `store.view` and call the methods; only
// this file talks to the client library.
import { ApiError, Conversation, KefuClient, toChat } from '../lib';
import type { Agent, ChatMessage, ConnectionState, Contact, CustomerInfo, QuickReply, TaskSummary } from '../lib';
import { canRevoke, isSystem } from '../shared/messages';
import type { AgentSession } from './session';
import { UnreadCounter } from './unread';

export const MAX_UPLOAD = 20 * 1024 * 1024;
const TYPING_MS = 5000;
const QUEUE_EVERY_MS = 10_000;
const CONTACTS_EVERY_MS = 60_000;
const RATING_EVERY_MS = 5000;

export type TaskStatus = 'waiting' | 'open' | 'ended';

export interface ContactView {
  user_id: string;
  name: string | null;
  task_id: number;
  status: TaskStatus;
  online: boolean;
  unread: number;
  last: ChatMessage | null;
  /** Latest activity, server ms: the sort key. */
  at: number;
}

export interface Upload {
  id: number;
  task: number;
  name: string;
  percent: number;
}

/** Something to tell the agent: a locale key and its values. */
export interface Notice {
  key: 'endFailed' | 'withdrawFailed' | 'deleteFailed' | 'uploadFailed' | 'fileTooLarge' | 'error' | 'transferredTo';
  vars?: Record<string, string | number>;
}

export interface TaskView {
  messages: ChatMessage[];
  historyLoaded: boolean;
  loadingOlder: boolean;
  noMoreHistory: boolean;
}

export interface View {
  conn: ConnectionState;
  status: 'available' | 'away';
  contacts: ContactView[];
  contactsLoaded: boolean;
  selected: number | null;
  /** The selected task's messages and paging state. */
  task: TaskView;
  /** Customer typing, by task: their id. */
  typing: Record<number, string>;
  queue: number;
  customer: CustomerInfo | null;
  customerTasks: TaskSummary[] | null;
  quickReplies: QuickReply[];
  uploads: Upload[];
  notice: Notice | null;
}

export interface StoreOptions {
  session: AgentSession;
  /** The token was refused (401, or the socket's auth) and could not be renewed: sign out. */
  onUnauthorized: () => void;
  /** A new access token when the current one expires (see ClientOptions.renew). */
  renew?: () => Promise<string>;
  /** A new message from a customer, live (not from the first load). */
  onIncoming?: (m: ChatMessage, contact: ContactView, newConversation: boolean) => void;
}

interface TaskState {
  conv: Conversation;
  before: number | undefined;
  historyLoaded: boolean;
  loadingOlder: boolean;
  noMore: boolean;
}

const EMPTY_TASK: TaskView = { messages: [], historyLoaded: false, loadingOlder: false, noMoreHistory: false };

export class AgentStore {
  view: View = {
    conn: 'connecting',
    status: 'available',
    contacts: [],
    contactsLoaded: false,
    selected: null,
    task: EMPTY_TASK,
    typing: {},
    queue: 0,
    customer: null,
    customerTasks: null,
    quickReplies: [],
    uploads: [],
    notice: null,
  };

  readonly me: string;
  private client: KefuClient;
  private listeners = new Set<() => void>();
  private offs: Array<() => void> = [];
  private timers: Array<ReturnType<typeof setInterval>> = [];
  private contacts = new Map<string, ContactView>();
  /** task id -> customer id */
  private taskUser = new Map<number, string>();
  private tasks = new Map<number, TaskState>();
  private unread = new UnreadCounter();
  private known = new Set<number>();
  private readSent = new Map<number, number>();
  private typingTimers = new Map<number, ReturnType<typeof setTimeout>>();
  private visible = true;
  private stopped = false;
  private contactsDirty = false;
  private contactsTimer?: ReturnType<typeof setTimeout>;
  private ratingTimer?: ReturnType<typeof setInterval>;
  private uploadSeq = 0;
  private everAuthed = false;
  /** Rows created locally from a push, with the time, so a refetch begun earlier keeps them. */
  private localRows = new Map<string, number>();

  constructor(private opts: StoreOptions) {
    this.me = opts.session.user_id;
    this.client = new KefuClient({ baseUrl: '', token: opts.session.token, device: 'console', ...(opts.renew ? { renew: opts.renew } : {}) });
  }

  /** Signs the agent out on every device; a failure (offline) is ignored. */
  async logout(): Promise<void> {
    await this.client.api.logout().catch(() => undefined);
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private set(patch: Partial<View>): void {
    if (this.stopped) return;
    if (this.contactsDirty) {
      this.contactsDirty = false;
      patch.contacts = this.sortedContacts();
    }
    this.view = { ...this.view, ...patch };
    for (const fn of this.listeners) fn();
  }

  /** Re-derives the list views after changes made in place. */
  private refresh(extra: Partial<View> = {}): void {
    const sel = this.view.selected;
    const st = sel !== null ? this.tasks.get(sel) : undefined;
    const task: TaskView = st
      ? { messages: st.conv.list(), historyLoaded: st.historyLoaded, loadingOlder: st.loadingOlder, noMoreHistory: st.noMore }
      : EMPTY_TASK;
    const same =
      task.messages === this.view.task.messages &&
      task.historyLoaded === this.view.task.historyLoaded &&
      task.loadingOlder === this.view.task.loadingOlder &&
      task.noMoreHistory === this.view.task.noMoreHistory;
    this.set({ ...(same ? {} : { task }), ...extra });
  }

  now(): number {
    return this.client.serverNow();
  }

  // ---- life cycle ---------------------------------------------------------

  start(): void {
    const c = this.client;
    this.offs = [
      c.on('state', (s) => this.set({ conn: s })),
      c.on('auth', () => {
        // After a reconnect: whatever changed meanwhile.
        if (this.everAuthed) {
          void this.loadContacts();
          void this.loadQueue();
        }
        this.everAuthed = true;
      }),
      c.on('message', (m) => this.onMessage(m)),
      c.on('read', (f) => this.onRead(f.task_id, f.quote, f.from)),
      c.on('revoke', (f) => {
        this.conv(f.task_id).revoke(f.quote);
        const row = this.row(f.task_id);
        if (row?.last?.id === f.quote) this.patchRow(row, { last: { ...row.last, is_revoke: true, content: '' } });
        this.refresh();
      }),
      c.on('delete', (f) => {
        const tasks = typeof f.task_id === 'number' ? [f.task_id] : [...this.tasks.keys()];
        for (const task of tasks) {
          if (!this.conv(task).markDeleted(f.quote)) continue;
          // The list's preview and search stop showing what was deleted.
          const row = this.row(task);
          if (row?.last?.id === f.quote) this.patchRow(row, { last: this.conv(task).list().at(-1) ?? null });
        }
        this.refresh();
      }),
      c.on('typing', (f) => f.from !== this.me && this.showTyping(f.task_id, f.from)),
      c.on('unauthorized', () => this.opts.onUnauthorized()),
    ];
    c.connect();
    // HTTP needs no socket: the list loads while the socket connects.
    void this.loadContacts();
    void this.loadQueue();
    void this.loadMe();
    void this.loadQuickReplies();
    this.timers.push(setInterval(() => this.visible && void this.loadQueue(), QUEUE_EVERY_MS));
    this.timers.push(setInterval(() => this.visible && void this.loadContacts(), CONTACTS_EVERY_MS));
  }

  stop(): void {
    this.stopped = true;
    this.offs.forEach((off) => off());
    this.timers.forEach(clearInterval);
    clearTimeout(this.contactsTimer);
    clearInterval(this.ratingTimer);
    this.typingTimers.forEach(clearTimeout);
    this.client.close();
  }

  setVisible(v: boolean): void {
    if (this.visible === v) return;
    this.visible = v;
    if (v) {
      this.sendReads();
      void this.loadQueue();
    }
  }

  /** Runs an API call; a 401 signs out, other errors reach the caller. */
  private async guard<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) this.opts.onUnauthorized();
      throw e;
    }
  }

  private quiet<T>(p: Promise<T>): Promise<T | undefined> {
    return this.guard(p).catch(() => undefined);
  }

  // ---- loading ------------------------------------------------------------

  private async loadMe(): Promise<void> {
    const agents = await this.quiet(this.client.api.agents());
    const me = agents?.find((a) => a.user_id === this.me);
    if (me) this.set({ status: me.status });
  }

  async loadQueue(): Promise<void> {
    const n = await this.quiet(this.client.api.queue());
    if (typeof n === 'number' && n !== this.view.queue) this.set({ queue: n });
  }

  async loadQuickReplies(): Promise<void> {
    const list = await this.quiet(this.client.api.quickReplies());
    if (list) this.set({ quickReplies: list });
  }

  /** The server's contact list, merged with what was pushed meanwhile. */
  async loadContacts(): Promise<void> {
    const began = Date.now();
    const list = await this.quiet(this.client.api.contacts());
    if (!list || this.stopped) return;
    const next = new Map<string, ContactView>();
    for (const c of list) next.set(c.user_id, this.fromServer(c));
    // Rows pushed in after the request left are not in its answer yet.
    for (const [uid, at] of this.localRows) {
      const row = this.contacts.get(uid);
      if (at >= began && row && !next.has(uid)) next.set(uid, row);
      else this.localRows.delete(uid);
    }
    this.contacts = next;
    this.taskUser.clear();
    for (const r of next.values()) this.taskUser.set(r.task_id, r.user_id);
    this.contactsDirty = true;
    const sel = this.view.selected;
    // The selected conversation went away (transferred by an admin): leave it.
    this.refresh({ contactsLoaded: true, ...(sel !== null && !this.taskUser.has(sel) ? { selected: null } : {}) });
    this.sendReads();
  }

  private fromServer(c: Contact): ContactView {
    const old = this.contacts.get(c.user_id);
    let last = c.last_message ? toChat(c.last_message, this.me) : null;
    // A push newer than the server's answer wins.
    if (old && old.task_id === c.task_id && old.last && (!last || old.last.id === undefined || (last.id ?? 0) < old.last.id)) last = old.last;
    this.unread.setBase(c.task_id, c.unread, c.last_message?.id ?? 0);
    // An answer computed before this console's own read reached the server
    // still counts what that read covered.
    const readUpTo = this.readSent.get(c.task_id);
    if (readUpTo !== undefined) this.unread.read(c.task_id, readUpTo);
    return {
      user_id: c.user_id,
      name: c.name,
      task_id: c.task_id,
      status: c.task_status,
      online: c.online,
      unread: this.unread.count(c.task_id),
      last,
      at: last?.created_at ?? old?.at ?? 0,
    };
  }

  private sortedContacts(): ContactView[] {
    return [...this.contacts.values()].sort((a, b) => b.at - a.at || b.task_id - a.task_id);
  }

  private row(task: number): ContactView | undefined {
    const uid = this.taskUser.get(task);
    return uid !== undefined ? this.contacts.get(uid) : undefined;
  }

  private patchRow(row: ContactView, patch: Partial<ContactView>): ContactView {
    const next = { ...row, ...patch };
    this.contacts.set(row.user_id, next);
    this.taskUser.set(next.task_id, next.user_id);
    this.contactsDirty = true;
    return next;
  }

  private conv(task: number): Conversation {
    return this.state(task).conv;
  }

  private state(task: number): TaskState {
    let st = this.tasks.get(task);
    if (!st) this.tasks.set(task, (st = { conv: new Conversation(), before: undefined, historyLoaded: false, loadingOlder: false, noMore: false }));
    return st;
  }

  // ---- incoming -----------------------------------------------------------

  private onMessage(m: ChatMessage): void {
    const task = m.task_id;
    if (typeof task !== 'number') return;
    const fresh = typeof m.id === 'number' && !this.known.has(m.id);
    if (typeof m.id === 'number') this.known.add(m.id);
    const ext = (m.ext ?? {}) as Record<string, unknown>;

    // Transferred away: the old agent's toast. The conversation leaves the list.
    if (isSystem(m) && ext.event === 'transferred' && ext.from_agent === this.me && ext.agent_id !== this.me) {
      this.removeTask(task);
      void this.loadQueue();
      return;
    }

    this.conv(task).upsert(m);
    let row = this.row(task);
    let isNew = false;
    if (!row) {
      const customer =
        m.category === 'customer' ? m.from
        : typeof ext.customer_id === 'string' ? ext.customer_id
        : m.mine ? m.to
        : undefined;
      const uid = customer ?? `task:${task}`;
      const old = this.contacts.get(uid);
      if (old) {
        // The customer came back: their new task takes the row.
        this.taskUser.delete(old.task_id);
        row = this.patchRow(old, { task_id: task, status: 'open', unread: this.unread.count(task) });
        if (this.view.selected === old.task_id) this.view = { ...this.view, selected: task };
      } else {
        isNew = true;
        row = this.patchRow(
          { user_id: uid, name: null, task_id: task, status: 'open', online: true, unread: 0, last: null, at: m.created_at ?? this.now() },
          {},
        );
        this.localRows.set(uid, Date.now());
      }
      this.scheduleContacts();
      void this.loadQueue();
    }

    if (!m.is_delete && (!row.last || row.last.id === undefined || m.id === undefined || m.id >= row.last.id || row.last.key === m.key)) {
      row = this.patchRow(row, { last: m, at: Math.max(row.at, m.created_at ?? 0) });
    }

    if (fresh && m.category === 'customer') {
      this.clearTyping(task);
      const reading = this.view.selected === task && this.visible;
      if (!reading && !m.is_read && this.unread.add(task, m.id!)) row = this.patchRow(row, { unread: this.unread.count(task) });
      if (!row.online) row = this.patchRow(row, { online: true });
      if (this.view.contactsLoaded) this.opts.onIncoming?.(m, row, isNew);
    }
    if (fresh && isSystem(m)) {
      void this.loadQueue();
      if (this.view.selected === task) void this.loadCustomer(false);
    }
    this.refresh();
    if (this.view.selected === task) this.sendReads();
  }

  private onRead(task: number, quote: number, from: string): void {
    const byOther = from !== this.me;
    this.conv(task).markRead(task, quote, byOther);
    if (!byOther) {
      // Read on another device (or this one): the badge clears everywhere.
      const whole = this.unread.read(task, quote);
      const row = this.row(task);
      if (row) this.patchRow(row, { unread: this.unread.count(task) });
      if (!whole) this.scheduleContacts();
    }
    this.refresh();
  }

  private showTyping(task: number, from: string): void {
    clearTimeout(this.typingTimers.get(task));
    this.typingTimers.set(task, setTimeout(() => this.clearTyping(task, true), TYPING_MS));
    if (this.view.typing[task] !== from) this.set({ typing: { ...this.view.typing, [task]: from } });
  }

  private clearTyping(task: number, emit = false): void {
    clearTimeout(this.typingTimers.get(task));
    this.typingTimers.delete(task);
    if (!(task in this.view.typing)) return;
    const typing = { ...this.view.typing };
    delete typing[task];
    if (emit) this.set({ typing });
    else this.view = { ...this.view, typing };
  }

  private scheduleContacts(): void {
    clearTimeout(this.contactsTimer);
    this.contactsTimer = setTimeout(() => void this.loadContacts(), 150);
  }

  private removeTask(task: number): void {
    const row = this.row(task);
    if (row) {
      this.contacts.delete(row.user_id);
      this.localRows.delete(row.user_id);
      this.contactsDirty = true;
    }
    this.taskUser.delete(task);
    this.unread.forget(task);
    this.refresh(this.view.selected === task ? { selected: null, customer: null, customerTasks: null } : {});
  }

  // ---- reading ------------------------------------------------------------

  /** Marks the open conversation read up to its newest message from the customer. */
  private sendReads(): void {
    const task = this.view.selected;
    if (task === null || !this.visible) return;
    const row = this.row(task);
    const st = this.tasks.get(task);
    if (!row) return;
    let newest = 0;
    let unreadHere = this.unread.count(task) > 0;
    for (const m of st?.conv.list() ?? []) {
      if (m.mine || typeof m.id !== 'number' || m.task_id !== task) continue;
      newest = Math.max(newest, m.id);
      if (m.category === 'customer' && !m.is_read) unreadHere = true;
    }
    if (row.last && !row.last.mine && typeof row.last.id === 'number') newest = Math.max(newest, row.last.id);
    if (!newest || !unreadHere || (this.readSent.get(task) ?? 0) >= newest) return;
    this.readSent.set(task, newest);
    this.unread.read(task, newest);
    st?.conv.markRead(task, newest, false);
    this.patchRow(row, { unread: this.unread.count(task) });
    this.client.read(task, newest).catch(() => {
      if (this.readSent.get(task) === newest) this.readSent.delete(task);
    });
    this.refresh();
  }

  // ---- selecting ----------------------------------------------------------

  select(task: number | null): void {
    if (task === this.view.selected) return;
    clearInterval(this.ratingTimer);
    this.ratingTimer = undefined;
    this.view = { ...this.view, selected: task, customer: null, customerTasks: null, notice: null };
    this.refresh();
    if (task === null) return;
    const st = this.state(task);
    if (!st.historyLoaded) void this.loadOlder();
    void this.loadCustomer(true);
    this.sendReads();
  }

  contactOf(task: number | null): ContactView | undefined {
    return task === null ? undefined : this.row(task);
  }

  /** The next older page of the selected task. */
  async loadOlder(): Promise<void> {
    const task = this.view.selected;
    if (task === null) return;
    const st = this.state(task);
    if (st.loadingOlder || st.noMore) return;
    st.loadingOlder = true;
    this.refresh();
    try {
      const page = await this.guard(this.client.api.history(task, st.before));
      for (const m of page.messages) {
        this.known.add(m.id);
        st.conv.upsert(toChat(m, this.me));
      }
      st.before = page.next_before ?? undefined;
      st.noMore = page.next_before == null;
    } catch {
      // try again on the next scroll
    } finally {
      st.loadingOlder = false;
      st.historyLoaded = true;
      this.refresh();
      if (this.view.selected === task) this.sendReads();
    }
  }

  /** The side panel: the customer's details and their conversations (with ratings). */
  async loadCustomer(details: boolean): Promise<void> {
    const task = this.view.selected;
    const row = this.contactOf(task);
    if (!row || row.user_id.startsWith('task:')) return;
    const uid = row.user_id;
    const [info, tasks] = await Promise.all([
      details ? this.quiet(this.client.api.customer(uid)) : Promise.resolve(undefined),
      this.quiet(this.client.api.tasks(uid)),
    ]);
    if (this.view.selected !== task) return;
    const patch: Partial<View> = {};
    if (info) {
      patch.customer = info;
      if (info.online !== row.online || (info.name && info.name !== row.name)) this.patchRow(row, { online: info.online, name: info.name ?? row.name });
    }
    if (tasks) patch.customerTasks = tasks;
    this.refresh(patch);
    this.watchRating();
  }

  /** While an ended, unrated conversation is open, look for its rating every few seconds. */
  private watchRating(): void {
    const task = this.view.selected;
    const row = this.contactOf(task);
    const summary = this.view.customerTasks?.find((t) => t.task_id === task);
    const waiting = row?.status === 'ended' && !summary?.rating;
    if (!waiting) {
      clearInterval(this.ratingTimer);
      this.ratingTimer = undefined;
    } else if (this.ratingTimer === undefined) {
      this.ratingTimer = setInterval(() => void this.loadCustomer(false), RATING_EVERY_MS);
    }
  }

  // ---- sending ------------------------------------------------------------

  private writable(): number | null {
    const task = this.view.selected;
    const row = this.contactOf(task);
    return row && row.status === 'open' ? row.task_id : null;
  }

  sendText(text: string): boolean {
    const task = this.writable();
    const content = text.trim();
    if (task === null || !content) return false;
    this.client.send({ kind: 'text', content, task_id: task });
    return true;
  }

  async sendFile(file: File): Promise<void> {
    const task = this.writable();
    if (task === null) return;
    const name = file.name || 'file';
    if (file.size > MAX_UPLOAD) {
      this.set({ notice: { key: 'fileTooLarge', vars: { name, max: '20 MB' } } });
      return;
    }
    const id = ++this.uploadSeq;
    this.set({ uploads: [...this.view.uploads, { id, task, name, percent: 0 }] });
    const progress = (f: number) =>
      this.set({ uploads: this.view.uploads.map((u) => (u.id === id ? { ...u, percent: Math.min(100, Math.round(f * 100)) } : u)) });
    try {
      const up = await this.guard(this.client.api.upload(file, name, progress));
      const kind = up.kind === 'picture' || up.kind === 'video' || up.kind === 'audio' ? up.kind : 'file';
      const ext = kind === 'picture' ? undefined : { name, size: file.size };
      this.client.send({ kind, content: up.url, ext, task_id: task });
    } catch (e) {
      this.set({ notice: { key: 'uploadFailed', vars: { name, reason: errText(e) } } });
    } finally {
      this.set({ uploads: this.view.uploads.filter((u) => u.id !== id) });
    }
  }

  retry(key: string): void {
    this.client.retry(key);
  }

  typing(): void {
    const task = this.writable();
    if (task !== null) this.client.typing({ task_id: task });
  }

  /** Own messages younger than the revoke window may be withdrawn. */
  canRevoke(m: ChatMessage): boolean {
    return canRevoke(m, this.now());
  }

  async revoke(id: number): Promise<void> {
    try {
      await this.client.revoke(id);
    } catch (e) {
      this.set({ notice: { key: 'withdrawFailed', vars: { reason: errText(e) } } });
    }
  }

  async deleteForMe(id: number): Promise<void> {
    try {
      await this.client.delete(id);
    } catch (e) {
      this.set({ notice: { key: 'deleteFailed', vars: { reason: errText(e) } } });
    }
  }

  dismissNotice(): void {
    this.set({ notice: null });
  }

  // ---- service actions ----------------------------------------------------

  async setStatus(status: 'available' | 'away'): Promise<void> {
    const before = this.view.status;
    this.set({ status });
    try {
      await this.guard(this.client.api.setStatus(status));
    } catch (e) {
      this.set({ status: before, notice: { key: 'error', vars: { reason: errText(e) } } });
    }
  }

  /** Ends the service; throws the server's refusal. */
  async end(task: number): Promise<void> {
    await this.guard(this.client.api.end(task));
    const row = this.row(task);
    if (row) this.patchRow(row, { status: 'ended', at: Math.max(row.at, this.now()) });
    this.clearTyping(task);
    this.refresh();
    void this.loadQueue();
    if (this.view.selected === task) void this.loadCustomer(false);
  }

  agents(): Promise<Agent[]> {
    return this.guard(this.client.api.agents());
  }

  /** Hands the task to another agent; throws the server's refusal. */
  async transfer(task: number, to: Agent, reason: string): Promise<void> {
    await this.guard(this.client.api.transfer(task, to.user_id, reason.trim() || undefined));
    this.removeTask(task);
    this.set({ notice: { key: 'transferredTo', vars: { name: to.name } } });
    void this.loadQueue();
  }

  // ---- quick replies ------------------------------------------------------

  async saveQuickReply(id: number | null, title: string, content: string): Promise<void> {
    const api = this.client.api;
    const r = await this.guard(id === null ? api.addQuickReply(title, content) : api.updateQuickReply(id, title, content));
    const rest = this.view.quickReplies.filter((q) => q.id !== r.id);
    this.set({ quickReplies: [...rest, r].sort((a, b) => a.title.localeCompare(b.title)) });
  }

  async deleteQuickReply(id: number): Promise<void> {
    await this.guard(this.client.api.deleteQuickReply(id));
    this.set({ quickReplies: this.view.quickReplies.filter((q) => q.id !== id) });
  }
}

export function errText(e: unknown): string {
  if (e && typeof e === 'object' && 'message' in e && typeof (e as { message: unknown }).message === 'string') {
    return (e as { message: string }).message;
  }
  return String(e);
}

/** A contact's display name: its name, else its id. */
export function contactName(c: Pick<ContactView, 'name' | 'user_id'>): string {
  return c.name?.trim() || c.user_id;
}

