import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { vi } from 'vitest';
import { ApiError } from './api';
import { Conversation } from './conversation';
import { msg, setup, tick } from './testkit';
import type { ChatMessage, Frame, WireError } from './types';

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(1_700_000_000_000);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('connecting', () => {
  it('opens /ws with no token in the URL and authenticates with the first frame', () => {
    const t = setup();
    t.client.connect();
    expect(t.last().url).toBe('ws://kefu.test/ws');
    expect(t.client.state).toBe('connecting');
    t.last().open();
    expect(t.last().sent[0]).toEqual({ action: 'auth', content: 'SECRET-TOKEN', ext: { device: 'pc' } });
    t.last().deliver({ category: 'ack', action: 'auth', created_at: Date.now(), ext: { user_id: 'v_me', role: 'customer', device: 'pc', conn_id: 'g-1' } });
    expect(t.client.state).toBe('connected');
    expect(t.client.session).toEqual({ user_id: 'v_me', role: 'customer', device: 'pc', conn_id: 'g-1' });
    expect(t.of('auth')).toHaveLength(1);
  });

  it('turns an https base URL into wss', () => {
    const t = setup({ baseUrl: 'https://chat.example.com/' });
    t.client.connect();
    expect(t.last().url).toBe('wss://chat.example.com/ws');
  });

  it('never puts the token in a WebSocket or fetch URL, and sends it as a Bearer header', async () => {
    const t = setup();
    t.client.connect();
    t.last().auth();
    await tick(100);
    await t.client.api.unread().catch(() => {});
    await t.client.api.history(7, 10, 5).catch(() => {});
    expect(t.net.calls.length).toBeGreaterThan(0);
    for (const s of t.sockets) expect(s.url).not.toContain('SECRET-TOKEN');
    for (const c of t.net.calls) {
      expect(c.url).not.toContain('SECRET-TOKEN');
      expect((c.init?.headers as Record<string, string>).Authorization).toBe('Bearer SECRET-TOKEN');
    }
  });
});

describe('reconnecting', () => {
  it('backs off exponentially with full jitter, and resets after a connection that authenticated', async () => {
    const t = setup();
    t.client.connect();
    const gaps: number[] = [];
    for (let i = 0; i < 8; i++) {
      const n = t.sockets.length;
      t.last().drop();
      let waited = 0;
      while (t.sockets.length === n) {
        await tick(10);
        waited += 10;
      }
      gaps.push(waited);
    }
    // random 0.5: half of 500, 1000, 2000, ... capped at 30 s.
    expect(gaps).toEqual([250, 500, 1000, 2000, 4000, 8000, 15000, 15000]);
    expect(t.client.state).toBe('connecting');

    // Jitter: a different random draw gives a different delay at the same step.
    t.rnd.value = 0.1;
    let n = t.sockets.length;
    t.last().drop();
    await tick(2999); // 0.1 of the 30 s cap
    expect(t.sockets.length).toBe(n);
    await tick(1);
    expect(t.sockets.length).toBe(n + 1);

    // After an authenticated connection the back-off starts over.
    t.rnd.value = 0.5;
    t.last().auth();
    n = t.sockets.length;
    t.last().drop(1001);
    expect(t.client.state).toBe('reconnecting');
    await tick(249);
    expect(t.sockets.length).toBe(n);
    await tick(1);
    expect(t.sockets.length).toBe(n + 1);
  });

  it('reconnects at once on the window online event and goes offline on the offline event', async () => {
    const t = setup({ random: () => 0.99 });
    t.client.connect();
    t.last().auth();
    t.win.dispatchEvent(new Event('offline'));
    expect(t.client.state).toBe('offline');
    expect(t.sockets[0].closedWith).toBeDefined();
    const n = t.sockets.length;
    t.win.dispatchEvent(new Event('online'));
    expect(t.sockets.length).toBe(n + 1);
    t.last().auth();
    expect(t.client.state).toBe('connected');
  });

  it('reconnects at once when the page becomes visible and is not connected', async () => {
    const t = setup();
    t.client.connect();
    t.last().auth();
    for (let i = 0; i < 5; i++) t.last().drop(); // the timer now waits a while
    const n = t.sockets.length;
    t.doc.visibilityState = 'hidden';
    t.doc.dispatchEvent(new Event('visibilitychange'));
    expect(t.sockets.length).toBe(n);
    t.doc.visibilityState = 'visible';
    t.doc.dispatchEvent(new Event('visibilitychange'));
    expect(t.sockets.length).toBe(n + 1);
  });

  it('treats a socket with no frame for two heartbeats as dead and reconnects', async () => {
    const t = setup({ heartbeatMs: 1000 });
    t.client.connect();
    t.last().auth();
    await tick(1000);
    expect(t.last().frames((f) => f.category === 'heartbeat')).toHaveLength(1);
    await tick(999); // no answer: at 2 s after the last frame the socket is declared dead
    expect(t.sockets).toHaveLength(1);
    await tick(1);
    expect(t.sockets[0].closedWith).toBeDefined();
    expect(t.client.state).toBe('reconnecting');
    await tick(250);
    expect(t.sockets).toHaveLength(2);
  });

  it('close() is final: no reconnect', async () => {
    const t = setup();
    t.client.connect();
    t.last().auth();
    t.client.close();
    t.win.dispatchEvent(new Event('online'));
    await tick(60_000);
    expect(t.sockets).toHaveLength(1);
  });
});

describe('auth refused', () => {
  it('goes unauthorized after an error ack and close 4401, and never reconnects', async () => {
    const t = setup();
    t.client.connect();
    t.last().open();
    const reading = t.client.read(7, 1); // waits for an auth that never comes
    const err: WireError = { code: 'unauthorized', message: 'token expired' };
    t.last().deliver({ category: 'ack', action: 'auth', ext: { error: err } });
    t.last().drop(4401);
    expect(t.client.state).toBe('unauthorized');
    expect(t.of('unauthorized')).toEqual([err]);
    await expect(reading).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    t.win.dispatchEvent(new Event('online'));
    await tick(120_000);
    expect(t.sockets).toHaveLength(1);
  });

  it('goes unauthorized on a bare close 4401 too', async () => {
    const t = setup();
    t.client.connect();
    t.last().open();
    t.last().drop(4401);
    expect(t.client.state).toBe('unauthorized');
    await expect(t.client.read(7, 1)).rejects.toMatchObject({ code: 'unavailable' });
    await tick(120_000);
    expect(t.sockets).toHaveLength(1);
  });
});

describe('renewing the token', () => {
  const jwt = (exp: number) => `h.${Buffer.from(JSON.stringify({ sub: 'v_me', exp })).toString('base64url')}.s`;
  const inSeconds = (s: number) => Math.floor(Date.now() / 1000) + s;
  const refused = (t: ReturnType<typeof setup>) => {
    t.last().open();
    t.last().deliver({ category: 'ack', action: 'auth', ext: { error: { code: 'unauthorized', message: 'token expired' } } });
  };

  it('renews a refused token once and signs in with the new one; a second refusal is final', async () => {
    const renew = vi.fn(async () => 'NEW-TOKEN');
    const t = setup({ renew });
    t.client.connect();
    refused(t);
    await tick(0);
    expect(renew).toHaveBeenCalledTimes(1);
    expect(t.sockets).toHaveLength(2);
    t.last().open();
    expect(t.last().sent[0]).toMatchObject({ action: 'auth', content: 'NEW-TOKEN' });
    refused(t);
    await tick(0);
    expect(renew).toHaveBeenCalledTimes(1);
    expect(t.client.state).toBe('unauthorized');
  });

  it('does not renew for a refusal a new token would not change (forbidden)', async () => {
    const renew = vi.fn(async () => 'NEW-TOKEN');
    const t = setup({ renew });
    t.client.connect();
    t.last().open();
    t.last().deliver({ category: 'ack', action: 'auth', ext: { error: { code: 'forbidden', message: 'this user id is an agent' } } });
    await tick(0);
    expect(renew).not.toHaveBeenCalled();
    expect(t.client.state).toBe('unauthorized');
  });

  it('ends unauthorized when the renewal is refused (signed out), and retries one that could not be sent', async () => {
    let answer: 'offline' | 'signed out' = 'offline';
    const renew = vi.fn(async () => {
      throw answer === 'offline' ? new ApiError(0, 'unavailable', 'network error') : new ApiError(401, 'unauthorized', 'signed out');
    });
    const t = setup({ renew });
    t.client.connect();
    refused(t);
    await tick(0);
    expect(t.client.state).not.toBe('unauthorized');
    answer = 'signed out';
    await tick(1000); // the reconnect's back-off
    refused(t);
    await tick(0);
    expect(renew).toHaveBeenCalledTimes(2);
    expect(t.client.state).toBe('unauthorized');
    expect(t.of('unauthorized')).toHaveLength(1);
  });

  it('renews a minute before expiry while connected, and retries an HTTP 401 once with the new token', async () => {
    const issued = [jwt(inSeconds(3600)), jwt(inSeconds(7200))];
    const tokens = [...issued];
    const renew = vi.fn(async () => tokens.shift()!);
    let expired = true;
    const t = setup({ token: jwt(inSeconds(600)), renew }, (url) => {
      if (url.endsWith('/api/unread') && expired) {
        expired = false;
        return { status: 401, body: { error: { code: 'unauthorized', message: 'token expired' } } };
      }
      return url.endsWith('/api/unread') ? { body: { total: 0, by_task: {} } } : undefined;
    });
    t.client.connect();
    t.last().auth();
    await tick(540_000 - 1000); // a minute before the 10 minutes are up
    expect(renew).not.toHaveBeenCalled();
    await tick(1000);
    expect(renew).toHaveBeenCalledTimes(1);
    await expect(t.client.api.unread()).resolves.toEqual({ total: 0, by_task: {} });
    expect(renew).toHaveBeenCalledTimes(2);
    const auths = t.net.calls.filter((c) => c.url.endsWith('/api/unread')).map((c) => (c.init?.headers as Record<string, string>).Authorization);
    expect(auths).toHaveLength(2);
    expect(auths).toEqual([`Bearer ${issued[0]}`, `Bearer ${issued[1]}`]);
  });
});

describe('sending', () => {
  it('a send typed offline goes out on reconnect with its id, in order', async () => {
    const t = setup();
    t.client.connect();
    t.last().auth();
    t.win.dispatchEvent(new Event('offline'));
    const a = t.client.send({ content: 'first' });
    const b = t.client.send({ content: 'second' });
    expect(a.state).toBe('sending');
    expect(a.key).toBe(a.client_msg_id);
    expect(t.client.pending().map((m) => m.key)).toEqual([a.key, b.key]);
    t.win.dispatchEvent(new Event('online'));
    t.last().auth();
    const sends = t.last().sends();
    expect(sends.map((f) => [f.client_msg_id, f.content, f.category])).toEqual([
      [a.client_msg_id, 'first', 'customer'],
      [b.client_msg_id, 'second', 'customer'],
    ]);
  });

  it('a send made before the first auth waits for the role and uses its category', () => {
    const t = setup();
    t.client.connect();
    const m = t.client.send({ content: 'hello', to: 'v_1' });
    t.last().open();
    expect(t.last().sends()).toHaveLength(0); // nothing before auth
    t.last().auth('alice', 'agent');
    expect(t.last().sends()).toEqual([
      { category: 'manager', action: 'send', kind: 'text', style: 'normal', content: 'hello', to: 'v_1', client_msg_id: m.client_msg_id },
    ]);
  });

  it('the ack turns a pending send into a sent message with the same key', () => {
    const t = setup();
    t.client.connect();
    t.last().auth();
    const m = t.client.send({ content: 'hi' });
    t.last().deliver({ category: 'ack', action: 'send', client_msg_id: m.client_msg_id, id: 101, task_id: 7, created_at: 5 });
    const acked = t.of<ChatMessage>('message').at(-1)!;
    expect(acked).toMatchObject({ key: m.key, id: 101, task_id: 7, created_at: 5, state: 'sent', mine: true, from: 'v_me' });
    expect(t.client.pending()).toEqual([]);
  });

  it('an unacked send is resent with the same id after a reconnect, and ack plus pushed copy make one bubble', async () => {
    const t = setup();
    const conv = new Conversation();
    t.client.on('message', (m) => conv.upsert(m));
    t.client.connect();
    t.last().auth();
    const m = t.client.send({ content: 'hi' });
    expect(t.last().sends()).toHaveLength(1);
    t.last().drop(1006);
    await tick(250);
    t.last().auth();
    expect(t.last().sends().map((f) => f.client_msg_id)).toEqual([m.client_msg_id]);
    t.last().deliver({ category: 'ack', action: 'send', client_msg_id: m.client_msg_id, id: 101, task_id: 7, created_at: 5 });
    // The same message pushed back (another device's view, or retransmission) must not double.
    t.last().deliver(msg(101, { category: 'customer', from: 'v_me', to: 'alice', content: 'hi', client_msg_id: m.client_msg_id }));
    expect(conv.list()).toHaveLength(1);
    expect(conv.list()[0]).toMatchObject({ key: m.key, id: 101, state: 'sent' });
  });

  it('a pushed copy of an own pending send completes it instead of duplicating it', () => {
    const t = setup();
    const conv = new Conversation();
    t.client.on('message', (m) => conv.upsert(m));
    t.client.connect();
    t.last().auth();
    const m = t.client.send({ content: 'hi' });
    t.last().deliver(msg(101, { category: 'customer', from: 'v_me', to: 'alice', content: 'hi', client_msg_id: m.client_msg_id }));
    expect(t.client.pending()).toEqual([]);
    expect(conv.list()).toHaveLength(1);
    expect(conv.list()[0]).toMatchObject({ key: m.key, id: 101, mine: true, state: 'sent' });
    // The late ack changes nothing.
    const before = t.of('message').length;
    t.last().deliver({ category: 'ack', action: 'send', client_msg_id: m.client_msg_id, id: 101, task_id: 7, created_at: 1101 });
    expect(t.of('message').length).toBe(before);
  });

  it('an own message sent from another device is pushed as mine and sent', () => {
    const t = setup();
    t.client.connect();
    t.last().auth();
    t.last().deliver(msg(55, { category: 'customer', from: 'v_me', to: 'alice', client_msg_id: 'other-device-1' }));
    expect(t.of<ChatMessage>('message')[0]).toMatchObject({ key: 'other-device-1', mine: true, state: 'sent', id: 55 });
  });

  it('resends an unacked send once more on the same connection after ackTimeoutMs', async () => {
    const t = setup({ ackTimeoutMs: 3000, heartbeatMs: 60_000 });
    t.client.connect();
    t.last().auth();
    const m = t.client.send({ content: 'hi' });
    await tick(2999);
    expect(t.last().sends()).toHaveLength(1);
    await tick(1);
    expect(t.last().sends().map((f) => f.client_msg_id)).toEqual([m.client_msg_id, m.client_msg_id]);
    await tick(30_000);
    expect(t.last().sends()).toHaveLength(2); // only once
  });

  it('an error ack fails the send, and retry() resends it with the same id', () => {
    const t = setup();
    t.client.connect();
    t.last().auth();
    const m = t.client.send({ content: 'x'.repeat(10) });
    const error = { code: 'too_large', message: 'content is over 10000 characters' };
    t.last().deliver({ category: 'ack', action: 'send', client_msg_id: m.client_msg_id, ext: { error } });
    expect(t.of<ChatMessage>('message').at(-1)).toMatchObject({ key: m.key, state: 'failed', error });
    expect(t.client.pending()[0].state).toBe('failed');
    // A failed send is not resent by a reconnect, only by retry().
    t.client.retry(m.key);
    expect(t.of<ChatMessage>('message').at(-1)).toMatchObject({ key: m.key, state: 'sending' });
    expect(t.of<ChatMessage>('message').at(-1)!.error).toBeUndefined();
    expect(t.last().sends().map((f) => f.client_msg_id)).toEqual([m.client_msg_id, m.client_msg_id]);
  });

  it('a transient error ack keeps the send sending and resends it after a back-off', async () => {
    const t = setup({ heartbeatMs: 60_000 });
    t.client.connect();
    t.last().auth();
    const m = t.client.send({ content: 'hi' });
    t.last().deliver({ category: 'ack', action: 'send', client_msg_id: m.client_msg_id, ext: { error: { code: 'unavailable', message: 'storage unavailable' } } });
    expect(t.client.pending()[0].state).toBe('sending');
    expect(t.of('error')).toEqual([]);
    await tick(500); // random 0.5 of a 1 s ceiling
    expect(t.last().sends()).toHaveLength(2);
    t.last().deliver({ category: 'ack', action: 'send', client_msg_id: m.client_msg_id, ext: { error: { code: 'rate_limited', message: 'slow down' } } });
    await tick(999);
    expect(t.last().sends()).toHaveLength(2);
    await tick(1); // the ceiling doubled
    expect(t.last().sends()).toHaveLength(3);
    t.last().deliver({ category: 'ack', action: 'send', client_msg_id: m.client_msg_id, id: 9, task_id: 7, created_at: 1 });
    expect(t.client.pending()).toEqual([]);
  });
});

describe('receiving', () => {
  it('dedups by server id across push, retransmission and offline pull, confirming every copy', async () => {
    const page = [msg(5), msg(6)];
    const t = setup({}, (url) => (url.includes('/api/offline') ? { body: { messages: page } } : undefined));
    t.client.connect();
    t.last().auth();
    t.last().deliver(msg(5));
    t.last().deliver(msg(5)); // retransmission
    await tick(100); // offline pull
    const got = t.of<ChatMessage>('message');
    expect(got.map((m) => m.id)).toEqual([5, 6]);
    expect(got[0]).toMatchObject({ key: 's5', mine: false });
    expect(t.last().receivedIds().sort()).toEqual([5, 6]);
    // A retransmission later is confirmed again: the first receive was lost.
    t.last().deliver(msg(5));
    await tick(50);
    expect(t.last().receivedIds().filter((x) => x === 5)).toHaveLength(2);
    expect(t.of('message')).toHaveLength(2);
  });

  it('batches receive confirmations', async () => {
    const t = setup();
    t.client.connect();
    t.last().auth();
    await tick(100);
    for (let i = 1; i <= 3; i++) t.last().deliver(msg(i));
    await tick(50);
    expect(t.last().frames((f) => f.category === 'receive')).toEqual([{ category: 'receive', ext: { ids: [1, 2, 3] } }]);
  });

  it('pages the offline list after every auth until a short page, and confirms with receive', async () => {
    const full = Array.from({ length: 500 }, (_, i) => msg(i + 1));
    const rest = [msg(501), msg(502)];
    const t = setup({}, (url) => {
      if (!url.includes('/api/offline')) return undefined;
      const after = Number(new URL(url).searchParams.get('after'));
      return { body: { messages: after === 0 ? full : after === 500 ? rest : [] } };
    });
    t.client.connect();
    t.last().auth();
    await tick(100);
    const urls = t.net.calls.map((c) => c.url);
    expect(urls).toEqual(['http://kefu.test/api/offline?after=0&limit=500', 'http://kefu.test/api/offline?after=500&limit=500']);
    expect(t.of('message')).toHaveLength(502);
    const receives = t.last().frames((f) => f.category === 'receive');
    expect(receives.every((f) => (f.ext!.ids as number[]).length <= 500)).toBe(true);
    expect(t.last().receivedIds()).toHaveLength(502);
    // Every reconnect pulls again.
    t.last().drop();
    await tick(250);
    t.last().auth();
    await tick(100);
    expect(t.net.calls.filter((c) => c.url.endsWith('after=0&limit=500'))).toHaveLength(2);
    expect(t.of('message')).toHaveLength(502); // nothing new
  });

  it('retries the offline pull after a network error', async () => {
    let fail = true;
    const t = setup({}, (url) => {
      if (!url.includes('/api/offline')) return undefined;
      if (fail) {
        fail = false;
        return { status: 503, body: { error: { code: 'unavailable', message: 'db down' } } };
      }
      return { body: { messages: [msg(3)] } };
    });
    t.client.connect();
    t.last().auth();
    await tick(100);
    expect(t.of('message')).toHaveLength(0);
    await tick(1000);
    expect(t.of('message')).toHaveLength(1);
  });

  it('emits system messages as both system and message', () => {
    const t = setup();
    t.client.connect();
    t.last().auth();
    const toast = msg(100, { category: 'system', style: 'toast', from: 'system', ext: { event: 'queued', queue_position: 1 } });
    t.last().deliver(toast);
    expect(t.of('system')).toHaveLength(1);
    expect(t.of('system')[0]).toMatchObject(toast);
    expect(t.of<ChatMessage>('message')[0]).toMatchObject({ id: 100, key: 's100', mine: false });
  });

  it('a read notice from the other side marks own messages read', () => {
    const t = setup();
    const conv = new Conversation();
    t.client.on('message', (m) => conv.upsert(m));
    t.client.on('read', (n) => conv.markRead(n.task_id, n.quote, n.from !== t.client.session?.user_id));
    t.client.connect();
    t.last().auth();
    const a = t.client.send({ content: 'a' });
    const b = t.client.send({ content: 'b' });
    t.last().deliver({ category: 'ack', action: 'send', client_msg_id: a.client_msg_id, id: 10, task_id: 7, created_at: 1 });
    t.last().deliver({ category: 'ack', action: 'send', client_msg_id: b.client_msg_id, id: 12, task_id: 7, created_at: 2 });
    t.last().deliver({ category: 'system', action: 'read', task_id: 7, quote: 10, from: 'alice', created_at: 3 });
    expect(t.of('read')).toEqual([{ task_id: 7, quote: 10, from: 'alice' }]);
    expect(conv.list().map((m) => [m.id, m.state])).toEqual([
      [10, 'read'],
      [12, 'sent'],
    ]);
    expect(t.of<ChatMessage>('message').at(-1)).toMatchObject({ id: 10, state: 'read', is_read: true });
  });

  it('revoke, delete and typing notices become events and update known messages', () => {
    const t = setup();
    t.client.connect();
    t.last().auth();
    t.last().deliver(msg(20, { url: 'https://x' }));
    t.last().deliver({ category: 'system', action: 'revoke', style: 'toast', task_id: 7, from: 'alice', quote: 20 });
    expect(t.of('revoke')).toEqual([{ task_id: 7, quote: 20 }]);
    expect(t.of<ChatMessage>('message').at(-1)).toMatchObject({ id: 20, is_revoke: true, content: '' });
    expect(t.of<ChatMessage>('message').at(-1)!.url).toBeUndefined();
    // A retransmission of the original does not bring the content back.
    t.last().deliver(msg(20, { url: 'https://x' }));
    expect(t.of<ChatMessage>('message').at(-1)!.content).toBe('');
    t.last().deliver({ category: 'system', action: 'delete', task_id: 7, from: 'v_me', quote: 20 });
    expect(t.of('delete')).toEqual([{ task_id: 7, quote: 20 }]);
    t.last().deliver({ category: 'system', action: 'typing', task_id: 7, from: 'alice' });
    expect(t.of('typing')).toEqual([{ task_id: 7, from: 'alice' }]);
  });
});

describe('read, revoke, delete, typing', () => {
  it('read() resolves on the success ack and rejects with an ApiError on an error ack', async () => {
    const t = setup();
    t.client.connect();
    t.last().auth();
    const ok = t.client.read(7, 105);
    const f = t.last().frames((x) => x.action === 'read')[0];
    expect(f).toMatchObject({ category: 'customer', action: 'read', task_id: 7, quote: 105 });
    t.last().deliver({ category: 'ack', action: 'read', created_at: 1, client_msg_id: f.client_msg_id });
    await expect(ok).resolves.toBeUndefined();

    const bad = t.client.revoke(101);
    const g = t.last().frames((x) => x.action === 'revoke')[0];
    expect(g).toMatchObject({ category: 'customer', action: 'revoke', quote: 101 });
    const error = { code: 'forbidden', message: 'too late to revoke' };
    t.last().deliver({ category: 'ack', action: 'revoke', created_at: 1, client_msg_id: g.client_msg_id, ext: { error } });
    await expect(bad).rejects.toMatchObject({ name: 'ApiError', status: 403, code: 'forbidden' });
    await expect(bad).rejects.toBeInstanceOf(ApiError);
    expect(t.of('error')).toEqual([{ ...error, action: 'revoke' }]);
  });

  it('delete() sent while disconnected goes out after auth, and its success tells this device', async () => {
    const t = setup();
    t.client.connect();
    t.last().auth();
    t.last().deliver(msg(30));
    t.last().drop();
    const done = t.client.delete(30);
    await tick(250);
    t.last().auth();
    const f = t.last().frames((x) => x.action === 'delete')[0];
    expect(f).toMatchObject({ category: 'customer', action: 'delete', quote: 30 });
    t.last().deliver({ category: 'ack', action: 'delete', created_at: 1, client_msg_id: f.client_msg_id });
    await done;
    expect(t.of('delete')).toEqual([{ task_id: 7, quote: 30 }]);
    expect(t.of<ChatMessage>('message').at(-1)).toMatchObject({ id: 30, is_delete: true });
  });

  it('typing sends at most one frame per 2 s, and a customer may omit the task', async () => {
    const t = setup();
    t.client.connect();
    t.last().auth();
    t.client.typing(); // no task known yet: nothing to send
    t.last().deliver(msg(1));
    t.client.typing();
    t.client.typing();
    await tick(1999);
    t.client.typing();
    await tick(1);
    t.client.typing();
    const frames = t.last().frames((f: Frame) => f.action === 'typing');
    expect(frames).toEqual([
      { category: 'customer', action: 'typing', task_id: 7 },
      { category: 'customer', action: 'typing', task_id: 7 },
    ]);
  });
});

describe('clock', () => {
  it('measures the server clock offset from heartbeats', async () => {
    const t = setup({ heartbeatMs: 1000 });
    t.client.connect();
    t.last().auth('v_me', 'customer', Date.now()); // answered at once: offset 0
    expect(Math.abs(t.client.serverNow() - Date.now())).toBeLessThanOrEqual(1);
    await tick(1000);
    const sentAt = Date.now();
    await tick(200); // a 200 ms round trip; the server stamped half-way, 5 s ahead of us
    t.last().deliver({ category: 'heartbeat', created_at: sentAt + 100 + 5000 });
    expect(t.client.serverNow() - Date.now()).toBe(5000);
  });

  it('takes the first estimate from the auth ack', () => {
    const t = setup();
    t.client.connect();
    t.last().auth('v_me', 'customer', Date.now() - 3000);
    expect(t.client.serverNow() - Date.now()).toBe(-3000);
  });
});
