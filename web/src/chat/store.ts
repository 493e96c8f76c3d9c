// The customer chat's state: one KefuClient, one Conversation across all of
// the customer's tasks, and what the views need (agent names, typing, unread,
// ratings, uploads). Views read `store.view` and call the methods; only this
// file talks to the client library.
import { KefuClient, Conversation, ApiError, toChat } from '../lib';
import type { ChatMessage, ConnectionState, Message, TaskSummary } from '../lib';
import { dropVisitor, hostCopyOf, loadJson, newVisitor, renewVisitor, resumeVisitor, saveJson, storedVisitor, type Visitor } from './identity';
import { canRevoke, isAgentMessage } from '../shared/messages';

export const MAX_UPLOAD = 20 * 1024 * 1024;
const TYPING_MS = 5000;

export interface Upload {
  id: number;
  name: string;
  percent: number;
}

export type Notice = { key: 'fileTooLarge' | 'uploadFailed' | 'ratingFailed' | 'signInFailed' | 'withdrawFailed'; vars?: Record<string, string | number> };

export interface Rating {
  score: number;
  comment: string | null;
}

export interface View {
  conn: ConnectionState | 'starting' | 'failed';
  userId: string | null;
  messages: ChatMessage[];
  agentName: string | null;
  agentNames: Record<string, string>;
  typing: string | null;
  unread: number;
  loadingOlder: boolean;
  noMoreHistory: boolean;
  historyLoaded: boolean;
  /** Tasks whose service ended (their assess card can be shown). */
  ended: Record<number, true>;
  ratings: Record<number, Rating>;
  /** The newest message belongs to an ended task: the next send starts a new one. */
  serviceEnded: boolean;
  uploads: Upload[];
  notice: Notice | null;
}

export interface StoreOptions {
  token?: string;
  name?: string;
  /** The host page's copy of the visitor token (see Settings.visitor_token). */
  visitorToken?: string;
  /** The anonymous visitor token in use (null: forget it), for the host to keep. */
  onVisitor?: (token: string | null) => void;
  /** A new incoming message from the agent side. */
  onAgentMessage?: (m: ChatMessage, fresh: boolean) => void;
  onUnread?: (n: number) => void;
  onReady?: (userId: string) => void;
}

export class ChatStore {
  view: View = {
    conn: 'starting',
    userId: null,
    messages: [],
    agentName: null,
    agentNames: {},
    typing: null,
    unread: 0,
    loadingOlder: false,
    noMoreHistory: false,
    historyLoaded: false,
    ended: {},
    ratings: {},
    serviceEnded: false,
    uploads: [],
    notice: null,
  };

  private client: KefuClient | null = null;
  private conv = new Conversation();
  private offs: Array<() => void> = [];
  private listeners = new Set<() => void>();
  private tasks: TaskSummary[] = [];
  /** Index into `tasks` of the task whose history is being paged. */
  private taskCursor = 0;
  private before: number | null | undefined = undefined;
  private known = new Set<number>();
  private visible = false;
  private readSent: Record<number, number> = {};
  private lastRead: Record<string, number> = {};
  private typingTimer: ReturnType<typeof setTimeout> | undefined;
  private retriedVisitor = false;
  /** The anonymous visitor's tokens; null for a token from the host page. */
  private visitor: Visitor | null = null;
  private uploadSeq = 0;
  private generation = 0;
  private lastUnread = -1;

  constructor(private opts: StoreOptions) {}

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private set(patch: Partial<View>) {
    this.view = { ...this.view, ...patch };
    for (const fn of this.listeners) fn();
  }

  /** Server time now, for "today" and the like. */
  now(): number {
    return this.client?.serverNow() ?? Date.now();
  }

  // ---- identity and connection -------------------------------------------

  async start(): Promise<void> {
    const gen = ++this.generation;
    let token = this.opts.token;
    try {
      if (!token) {
        const visitor = await this.resume();
        if (gen !== this.generation) return;
        this.useVisitor(visitor);
        token = visitor.token;
      }
    } catch (e) {
      if (gen === this.generation) this.set({ conn: 'failed', notice: { key: 'signInFailed', vars: { reason: errText(e) } } });
      return;
    }
    if (gen !== this.generation) return;
    this.connect(token);
  }

  /** The remembered visitor, renewed if need be; a new one if none is left. */
  private async resume(): Promise<Visitor> {
    const stored = storedVisitor(this.opts.visitorToken);
    if (stored) {
      try {
        return await resumeVisitor(stored);
      } catch (e) {
        // Signed out or unknown: a new visitor. Unreachable: try again later.
        if (!(e instanceof ApiError && (e.status === 401 || e.status === 403))) throw e;
        dropVisitor();
      }
    }
    return newVisitor(this.opts.name);
  }

  /** Keeps the visitor's tokens here and tells the host page to keep a copy. */
  private useVisitor(v: Visitor) {
    this.visitor = v;
    this.opts.onVisitor?.(hostCopyOf(v));
  }

  /** For the client: a new access token for the visitor (none for a host's token). */
  private renew = async (): Promise<string> => {
    if (!this.visitor) throw new ApiError(401, 'unauthorized', 'the host page signs this customer in');
    const renewed = await renewVisitor(this.visitor);
    this.useVisitor(renewed);
    return renewed.token;
  };

  /** The host page switched users: start over with that identity. */
  switchUser(token: string | undefined, name?: string) {
    this.stop();
    this.opts = { ...this.opts, token, name };
    this.visitor = null;
    this.conv = new Conversation();
    this.tasks = [];
    this.taskCursor = 0;
    this.before = undefined;
    this.known.clear();
    this.readSent = {};
    this.retriedVisitor = false;
    this.set({
      conn: 'starting', userId: null, messages: [], agentName: null, typing: null, unread: 0,
      noMoreHistory: false, historyLoaded: false, ended: {}, ratings: {}, serviceEnded: false, notice: null,
    });
    void this.start();
  }

  stop() {
    this.generation++;
    for (const off of this.offs) off();
    this.offs = [];
    this.client?.close();
    this.client = null;
  }

  private connect(token: string) {
    const client = new KefuClient({ baseUrl: '', token, device: 'web', ...(this.visitor ? { renew: this.renew } : {}) });
    this.client = client;
    const gen = this.generation;
    const live = () => gen === this.generation;
    this.offs = [
      client.on('state', (s: ConnectionState) => live() && this.set({ conn: s })),
      client.on('auth', () => {
        if (!live()) return;
        const userId = client.session?.user_id ?? null;
        if (userId && userId !== this.view.userId) {
          this.lastRead = loadJson<Record<string, number>>(`kefu.read.${userId}`, {});
          this.set({ userId });
          this.opts.onReady?.(userId);
          void this.loadInitial();
        }
      }),
      client.on('message', (m: ChatMessage) => live() && this.onMessage(m)),
      // Notices also reach messages loaded from history, which the client
      // has not seen: apply them to the conversation too.
      client.on('read', (f) => {
        if (!live()) return;
        this.conv.markRead(f.task_id, f.quote, f.from !== this.view.userId);
        this.refresh();
      }),
      client.on('revoke', (f) => {
        if (!live()) return;
        this.conv.revoke(f.quote);
        this.refresh();
      }),
      client.on('delete', (f) => {
        if (!live()) return;
        this.conv.markDeleted(f.quote);
        this.refresh();
      }),
      client.on('typing', (f) => live() && f.from !== this.view.userId && this.showTyping(f.from)),
      client.on('unauthorized', () => live() && this.onUnauthorized()),
    ];
    client.connect();
  }

  private onUnauthorized() {
    if (this.opts.token || this.retriedVisitor) {
      this.stop();
      this.set({ conn: 'failed', notice: { key: 'signInFailed' } });
      return;
    }
    // The stored visitor token was refused (secret rotated, user gone):
    // become a new visitor, once.
    this.retriedVisitor = true;
    dropVisitor();
    this.opts.visitorToken = undefined;
    this.opts.onVisitor?.(null);
    this.stop();
    const gen = this.generation;
    newVisitor(this.opts.name).then(
      (visitor) => {
        if (gen !== this.generation) return;
        this.useVisitor(visitor);
        this.connect(visitor.token);
      },
      (e) => this.set({ conn: 'failed', notice: { key: 'signInFailed', vars: { reason: errText(e) } } }),
    );
  }

  // ---- history ------------------------------------------------------------

  private async loadInitial() {
    const client = this.client;
    if (!client) return;
    try {
      this.tasks = await client.api.tasks();
    } catch {
      this.tasks = [];
    }
    if (client !== this.client) return;
    const ended: Record<number, true> = {};
    const ratings: Record<number, Rating> = {};
    for (const t of this.tasks) {
      if (t.status === 'ended') ended[t.task_id] = true;
      if (t.rating) ratings[t.task_id] = { score: t.rating.score, comment: t.rating.comment };
    }
    const names = { ...this.view.agentNames };
    for (const t of this.tasks) if (t.agent_id && t.agent_name) names[t.agent_id] ??= t.agent_name;
    const live = this.tasks.find((t) => t.status !== 'ended');
    this.set({
      ended,
      ratings,
      agentNames: names,
      agentName: live?.agent_id ? names[live.agent_id] ?? live.agent_name ?? null : null,
    });
    this.taskCursor = 0;
    this.before = undefined;
    await this.loadOlder();
    this.set({ historyLoaded: true });
  }

  /** The next older page: of the current task, then of the task before it. */
  async loadOlder(): Promise<void> {
    const client = this.client;
    if (!client || this.view.loadingOlder || this.view.noMoreHistory) return;
    const task = this.tasks[this.taskCursor];
    if (!task) {
      this.set({ noMoreHistory: true });
      return;
    }
    this.set({ loadingOlder: true });
    try {
      const page = await client.api.history(task.task_id, this.before ?? undefined);
      if (client !== this.client) return;
      this.merge(page.messages);
      if (page.next_before == null) {
        this.taskCursor++;
        this.before = undefined;
      } else {
        this.before = page.next_before;
      }
      this.set({ loadingOlder: false, noMoreHistory: this.taskCursor >= this.tasks.length });
    } catch {
      if (client === this.client) this.set({ loadingOlder: false });
    }
  }

  private merge(list: Message[]) {
    const me = this.view.userId ?? '';
    for (const m of list) {
      this.known.add(m.id);
      this.conv.upsert(toChat(m, me));
    }
    this.refresh();
  }

  // ---- live events --------------------------------------------------------

  private onMessage(m: ChatMessage) {
    const fresh = typeof m.id === 'number' && !this.known.has(m.id);
    if (typeof m.id === 'number') this.known.add(m.id);
    this.conv.upsert(m);
    const patch: Partial<View> = {};
    if (fresh) {
      const ev = m.ext?.event;
      if (m.style === 'assess' && typeof m.task_id === 'number') {
        patch.ended = { ...this.view.ended, [m.task_id]: true };
        patch.agentName = null;
        patch.typing = null;
        clearTimeout(this.typingTimer);
      }
      if ((ev === 'assigned' || ev === 'transferred' || ev === 'reassigned') && m.ext) this.onAssignment(m.ext);
      if (isAgentMessage(m)) {
        if (this.view.typing) {
          clearTimeout(this.typingTimer);
          patch.typing = null;
        }
        if (m.from && !this.view.agentNames[m.from]) void this.refreshNames();
        this.opts.onAgentMessage?.(m, true);
      }
    }
    if (Object.keys(patch).length) this.set(patch);
    this.refresh();
  }

  private onAssignment(ext: Record<string, unknown>) {
    const id = typeof ext.agent_id === 'string' ? ext.agent_id : null;
    if (ext.event === 'reassigned' || !id) {
      this.set({ agentName: null });
      return;
    }
    const name = typeof ext.agent_name === 'string' ? ext.agent_name : this.view.agentNames[id];
    this.set({ agentName: name ?? id });
    if (!name) void this.refreshNames();
  }

  /** Agent display names come from the task summaries. */
  private async refreshNames() {
    const client = this.client;
    if (!client) return;
    try {
      const tasks = await client.api.tasks();
      if (client !== this.client) return;
      const names = { ...this.view.agentNames };
      for (const t of tasks) if (t.agent_id && t.agent_name) names[t.agent_id] = t.agent_name;
      const live = tasks.find((t) => t.status !== 'ended');
      this.set({ agentNames: names, agentName: live?.agent_id ? names[live.agent_id] ?? live.agent_id : this.view.agentName });
    } catch {
      // names stay ids
    }
  }

  private showTyping(from?: string) {
    clearTimeout(this.typingTimer);
    const name = (from && this.view.agentNames[from]) || this.view.agentName || from || '';
    this.set({ typing: name });
    this.typingTimer = setTimeout(() => this.set({ typing: null }), TYPING_MS);
  }

  /** Re-derives the message list, unread count and read receipts. */
  private refresh() {
    const messages = this.conv.list().filter((m) => !m.is_delete);
    const last = messages[messages.length - 1];
    const serviceEnded = !!last && typeof last.task_id === 'number' && !!this.view.ended[last.task_id] && last.state !== 'sending';
    this.set({ messages, serviceEnded });
    this.sendReads();
    this.updateUnread();
  }

  visibleNow(): boolean {
    return this.visible;
  }

  setVisible(v: boolean) {
    if (this.visible === v) return;
    this.visible = v;
    this.sendReads();
    this.updateUnread();
  }

  private sendReads() {
    const client = this.client;
    if (!this.visible || !client) return;
    const top: Record<number, number> = {};
    for (const m of this.view.messages) {
      if (isAgentMessage(m) && typeof m.id === 'number' && typeof m.task_id === 'number') {
        top[m.task_id] = Math.max(top[m.task_id] ?? 0, m.id);
      }
    }
    let changed = false;
    for (const [k, id] of Object.entries(top)) {
      const task = Number(k);
      if ((this.lastRead[k] ?? 0) < id) {
        this.lastRead[k] = id;
        changed = true;
      }
      if ((this.readSent[task] ?? 0) >= id) continue;
      this.readSent[task] = id;
      const unreadThere = this.view.messages.some((m) => isAgentMessage(m) && m.task_id === task && !m.is_read);
      if (!unreadThere) continue;
      client.read(task, id).catch(() => {
        if (this.readSent[task] === id) delete this.readSent[task];
      });
    }
    if (changed && this.view.userId) saveJson(`kefu.read.${this.view.userId}`, this.lastRead);
  }

  private updateUnread() {
    let n = 0;
    for (const m of this.view.messages) {
      if (!isAgentMessage(m) || m.is_read || typeof m.id !== 'number') continue;
      if (m.id > (this.lastRead[String(m.task_id)] ?? 0)) n++;
    }
    if (n !== this.view.unread) this.set({ unread: n });
    if (n !== this.lastUnread) {
      this.lastUnread = n;
      this.opts.onUnread?.(n);
    }
  }

  // ---- sending ------------------------------------------------------------

  sendText(text: string): boolean {
    const content = text.trim();
    if (!content || !this.client) return false;
    this.onMessage(this.client.send({ kind: 'text', content }));
    return true;
  }

  sendCard(style: 'card' | 'order', ext: Record<string, unknown>) {
    if (!this.client) return;
    const title = typeof ext.title === 'string' && ext.title ? ext.title : String(ext.order_no ?? '');
    const url = typeof ext.url === 'string' ? ext.url : undefined;
    this.onMessage(this.client.send({ style, kind: 'text', content: title.slice(0, 500), url, ext }));
  }

  retry(key: string) {
    this.client?.retry(key);
  }

  canRevoke(m: ChatMessage): boolean {
    return canRevoke(m, this.now());
  }

  /** Withdraws one of the customer's own messages; both sides see it go. */
  async revoke(id: number): Promise<void> {
    try {
      await this.client?.revoke(id);
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      this.set({ notice: { key: 'withdrawFailed', vars: { reason } } });
    }
  }

  /** Only into a live task: after the service ended there is no one to tell. */
  typing() {
    if (!this.client || this.view.serviceEnded) return;
    const msgs = this.view.messages;
    for (let i = msgs.length - 1; i >= 0; i--) {
      const t = msgs[i].task_id;
      if (typeof t === 'number') {
        if (!this.view.ended[t]) this.client.typing({ task_id: t });
        return;
      }
    }
  }

  async sendFile(file: File) {
    const client = this.client;
    if (!client) return;
    if (file.size > MAX_UPLOAD) {
      this.set({ notice: { key: 'fileTooLarge', vars: { name: file.name, max: '20 MB' } } });
      return;
    }
    const id = ++this.uploadSeq;
    const name = file.name || 'file';
    this.set({ uploads: [...this.view.uploads, { id, name, percent: 0 }] });
    const progress = (p: unknown) => {
      const pct = typeof p === 'number' ? (p <= 1 ? p * 100 : p) : 0;
      this.set({ uploads: this.view.uploads.map((u) => (u.id === id ? { ...u, percent: Math.min(100, Math.round(pct)) } : u)) });
    };
    try {
      const up = await client.api.upload(file, name, progress);
      if (client !== this.client) return;
      const kind = up.kind === 'picture' || up.kind === 'video' || up.kind === 'audio' ? up.kind : 'file';
      const ext = kind === 'file' || kind === 'audio' || kind === 'video' ? { name, size: file.size } : undefined;
      this.onMessage(client.send({ kind, content: up.url, ext }));
    } catch (e) {
      this.set({ notice: { key: 'uploadFailed', vars: { name, reason: errText(e) } } });
    } finally {
      this.set({ uploads: this.view.uploads.filter((u) => u.id !== id) });
    }
  }

  async rate(taskId: number, score: number, comment: string): Promise<void> {
    const client = this.client;
    if (!client) return;
    try {
      await client.api.rate(taskId, score, comment.trim() || undefined);
    } catch (e) {
      // 409: rated already (on another device, or a double click).
      if (!(e instanceof ApiError && e.status === 409)) {
        this.set({ notice: { key: 'ratingFailed', vars: { reason: errText(e) } } });
        return;
      }
    }
    this.set({ ratings: { ...this.view.ratings, [taskId]: { score, comment: comment.trim() || null } } });
  }

  dismissNotice() {
    this.set({ notice: null });
  }
}

function errText(e: unknown): string {
  if (e && typeof e === 'object' && 'message' in e && typeof (e as { message: unknown }).message === 'string') {
    return (e as { message: string }).message;
  }
  return String(e);
}
