import { describe, expect, it } from 'vitest';
import { Conversation, toChat } from './conversation';
import { msg } from './testkit';
import type { ChatMessage } from './types';

const other = (id: number, over: Partial<ChatMessage> = {}): ChatMessage => ({ ...toChat(msg(id), 'v_me'), ...over });
const pending = (key: string, content = key): ChatMessage => ({ key, client_msg_id: key, mine: true, state: 'sending', content });
const acked = (key: string, id: number): ChatMessage => ({ ...toChat(msg(id, { from: 'v_me', to: 'alice', client_msg_id: key, content: key }), 'v_me') });

describe('Conversation', () => {
  it('lists stored messages in server id order, then pending sends in send order', () => {
    const c = new Conversation();
    c.upsert(pending('p1'));
    c.upsert(other(9));
    c.upsert(pending('p2'));
    c.upsert(other(3));
    c.upsert(other(5));
    expect(c.list().map((m) => m.key)).toEqual(['s3', 's5', 's9', 'p1', 'p2']);
    expect(c.oldestId()).toBe(3);
    expect(c.newestFromOther(7)).toBe(9);
  });

  it('replaces a pending send in place by its acked version, keeping its key', () => {
    const c = new Conversation();
    c.upsert(pending('p1'));
    c.upsert(pending('p2'));
    expect(c.upsert(acked('p1', 20))).toBe(true);
    expect(c.list().map((m) => [m.key, m.id, m.state])).toEqual([
      ['p1', 20, 'sent'],
      ['p2', undefined, 'sending'],
    ]);
    // A late pending copy of an acked send does not come back.
    expect(c.upsert(pending('p1'))).toBe(false);
    expect(c.list()).toHaveLength(2);
  });

  it('dedups by server id and reports no change for an identical copy', () => {
    const c = new Conversation();
    expect(c.upsert(other(4))).toBe(true);
    expect(c.upsert(other(4))).toBe(false);
    expect(c.upsert(other(4, { is_read: true }))).toBe(true);
    expect(c.list()).toHaveLength(1);
  });

  it('never moves flags or send state backwards', () => {
    const c = new Conversation();
    c.upsert(acked('p1', 20));
    c.markRead(7, 20, true);
    c.upsert(acked('p1', 20)); // a stale copy
    expect(c.list()[0]).toMatchObject({ state: 'read', is_read: true });
    c.revoke(20);
    c.upsert(acked('p1', 20));
    expect(c.list()[0]).toMatchObject({ is_revoke: true, content: '' });
  });

  it('markRead by the other side marks own messages up to the id; by the user, theirs', () => {
    const c = new Conversation();
    c.upsert(acked('a', 1));
    c.upsert(other(2));
    c.upsert({ ...acked('t8', 3), task_id: 8 }); // another task
    c.upsert(acked('b', 4));
    c.upsert(acked('x', 6));
    expect(c.markRead(7, 4, true)).toBe(true);
    expect(c.list().map((m) => [m.id, m.state ?? m.is_read])).toEqual([
      [1, 'read'],
      [2, false],
      [3, 'sent'],
      [4, 'read'],
      [6, 'sent'],
    ]);
    expect(c.markRead(7, 4, true)).toBe(false);
    c.markRead(7, 2, false);
    expect(c.list().find((m) => m.id === 2)!.is_read).toBe(true);
  });

  it('hides deleted messages and can forget messages and pending sends', () => {
    const c = new Conversation();
    c.upsert(other(1));
    c.upsert(other(2));
    c.upsert(pending('p'));
    c.markDeleted(1);
    expect(c.list().map((m) => m.key)).toEqual(['s2', 'p']);
    c.upsert(other(1)); // a late copy stays hidden
    expect(c.list().map((m) => m.key)).toEqual(['s2', 'p']);
    c.remove(2);
    c.remove('p');
    expect(c.list()).toEqual([]);
  });

  it('gives a new list array after each change and the same one otherwise', () => {
    const c = new Conversation();
    c.upsert(other(1));
    const a = c.list();
    expect(c.list()).toBe(a);
    c.upsert(other(2));
    expect(c.list()).not.toBe(a);
  });

  it('toChat keys own messages by client_msg_id and others by id', () => {
    expect(toChat(msg(1, { from: 'v_me', client_msg_id: 'c-1', is_read: true }), 'v_me')).toMatchObject({ key: 'c-1', mine: true, state: 'read' });
    expect(toChat(msg(2), 'v_me')).toMatchObject({ key: 's2', mine: false });
    expect(toChat(msg(2), 'v_me').state).toBeUndefined();
    expect(toChat(msg(3, { is_revoke: true, content: 'x', url: 'u' }), 'v_me')).toMatchObject({ content: '' });
  });
});
