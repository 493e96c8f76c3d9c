// The message list the apps render: stored messages in server id order,
// then the user's unacked sends in the order they were typed. The same
// message can reach a client by ack, push, retransmission, offline pull and
// history; this is where those copies become one bubble.

import type { ChatMessage, Frame, Message, SendState } from './types';

/**
 * A stored message as the apps show it. `me` is the session's user id.
 * Own messages keep their client_msg_id as key, so that the bubble shown
 * while sending is the one that gets its id.
 */
export function toChat(m: Message, me: string | undefined): ChatMessage {
  const mine = m.from === me && m.category !== 'system';
  const c: ChatMessage = { ...m, key: mine && m.client_msg_id ? m.client_msg_id : `s${m.id}`, mine };
  if (mine) c.state = m.is_read ? 'read' : 'sent';
  return m.is_revoke ? scrub(c) : c;
}

function scrub(m: ChatMessage): ChatMessage {
  m.content = '';
  delete m.url;
  return m;
}

// Failed and sending rank the same: a retry moves failed back to sending.
const RANK: Record<SendState, number> = { failed: 0, sending: 0, sent: 1, read: 2 };

/**
 * `next` laid over `old`. Flags and send state only move forward: a
 * byte-for-byte retransmission of a message must not un-read or un-revoke it.
 * The key of the first copy stays, so the bubble is not re-created.
 */
export function merge(old: ChatMessage, next: ChatMessage): ChatMessage {
  const r: ChatMessage = { ...old };
  const w = r as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(next)) if (v !== undefined) w[k] = v;
  r.key = old.key;
  r.mine = old.mine || next.mine;
  for (const f of ['is_read', 'is_revoke', 'is_delete'] as const) if (old[f]) r[f] = true;
  if (old.state && next.state && RANK[old.state] > RANK[next.state]) r.state = old.state;
  if (r.state !== 'failed') delete r.error;
  return r.is_revoke ? scrub(r) : r;
}

/** Shallow equality, with nested objects (ext) compared by value. */
export function same(a: ChatMessage, b: ChatMessage): boolean {
  const ka = Object.keys(a).filter((k) => a[k as keyof ChatMessage] !== undefined);
  const kb = Object.keys(b).filter((k) => b[k as keyof ChatMessage] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => {
    const x = a[k as keyof ChatMessage];
    const y = b[k as keyof ChatMessage];
    return x === y || (typeof x === 'object' && JSON.stringify(x) === JSON.stringify(y));
  });
}

export class Conversation {
  private byId = new Map<number, ChatMessage>();
  /** Own sends with no id yet (sending or failed), by key, in send order. */
  private pend = new Map<string, ChatMessage>();
  /** key -> id of stored messages, so a late pending copy is not re-added. */
  private keys = new Map<string, number>();
  private cache: ChatMessage[] | null = null;

  /** Adds or updates one message; returns whether the list changed. */
  upsert(m: ChatMessage): boolean {
    if (m.id === undefined) {
      if (this.keys.has(m.key)) return false; // already acked: the stored copy wins
      const old = this.pend.get(m.key);
      const next = old ? merge(old, m) : m;
      if (old && same(old, next)) return false;
      this.pend.set(m.key, next);
      return this.touch();
    }
    // The acked or pushed copy of a pending send takes its place.
    const cmid = m.mine ? m.client_msg_id : undefined;
    const pending = this.pend.get(m.key) ?? (cmid !== undefined ? this.pend.get(cmid) : undefined);
    if (pending) this.pend.delete(pending.key);
    const old = this.byId.get(m.id) ?? pending;
    const next = old ? merge(old, m) : m;
    if (!pending && old && same(old, next)) return false;
    this.byId.set(m.id, next);
    this.keys.set(next.key, m.id);
    return this.touch();
  }

  /**
   * A read notice. `byOther`: the other side read up to `upTo`, so own
   * messages become 'read'; else the user read on some device, so the
   * messages addressed to them become is_read.
   */
  markRead(taskId: number, upTo: number, byOther: boolean): boolean {
    let changed = false;
    for (const [id, m] of this.byId) {
      if (m.task_id !== taskId || id > upTo || m.mine !== byOther) continue;
      if (m.is_read && (!m.mine || m.state === 'read')) continue;
      this.byId.set(id, m.mine ? { ...m, is_read: true, state: 'read' } : { ...m, is_read: true });
      changed = true;
    }
    return changed && this.touch();
  }

  /** Revoked: the bubble stays, its content goes. */
  revoke(id: number): boolean {
    return this.update(id, { is_revoke: true });
  }

  /** Deleted for this user: kept (so a late copy stays hidden) but not listed. */
  markDeleted(id: number): boolean {
    return this.update(id, { is_delete: true });
  }

  /** Forgets a stored message (by id) or a pending send (by key). */
  remove(idOrKey: number | string): boolean {
    if (typeof idOrKey === 'string') return this.pend.delete(idOrKey) && this.touch();
    const m = this.byId.get(idOrKey);
    if (!m) return false;
    this.byId.delete(idOrKey);
    this.keys.delete(m.key);
    return this.touch();
  }

  /** Stored messages in id order (deleted ones hidden), then pending sends in send order. */
  list(): ChatMessage[] {
    if (!this.cache) {
      const stored = [...this.byId.values()].filter((m) => !m.is_delete).sort((a, b) => a.id! - b.id!);
      this.cache = [...stored, ...this.pend.values()];
    }
    return this.cache;
  }

  /** The cursor for the next history page (`before`). */
  oldestId(): number | undefined {
    let min: number | undefined;
    for (const id of this.byId.keys()) if (min === undefined || id < min) min = id;
    return min;
  }

  /** The newest message id from the other side, optionally in one task: what to read up to. */
  newestFromOther(taskId?: number): number | undefined {
    let max: number | undefined;
    for (const [id, m] of this.byId) {
      if (m.mine || (taskId !== undefined && m.task_id !== taskId)) continue;
      if (max === undefined || id > max) max = id;
    }
    return max;
  }

  clear(): void {
    this.byId.clear();
    this.pend.clear();
    this.keys.clear();
    this.touch();
  }

  private update(id: number, patch: Frame): boolean {
    const m = this.byId.get(id);
    if (!m) return false;
    const next = merge(m, { ...m, ...patch });
    if (same(m, next)) return false;
    this.byId.set(id, next);
    return this.touch();
  }

  /** A new array on every change, so `list()` works as a render dependency. */
  private touch(): true {
    this.cache = null;
    return true;
  }
}
