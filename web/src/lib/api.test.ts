import { afterEach, describe, expect, it, vi } from 'vitest';
import { Api, ApiError } from './api';
import { fakeFetch } from './testkit';

const base = 'http://kefu.test';

describe('Api', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('sends the token as a Bearer header and builds the documented paths', async () => {
    const net = fakeFetch((url) => {
      if (url.includes('/api/tasks?')) return { body: { tasks: [{ task_id: 1 }] } };
      if (url.includes('/messages')) return { body: { task_id: 7, messages: [], next_before: null } };
      if (url.includes('/contacts')) return { body: { contacts: [] } };
      if (url.includes('/agents')) return { body: { agents: [] } };
      if (url.includes('/unread')) return { body: { total: 0, by_task: {} } };
      return { body: {} };
    });
    const api = new Api(base + '/', () => 'TOK', net.fetch);
    expect(await api.tasks('v 1')).toEqual([{ task_id: 1 }]);
    await api.history(7, 151, 50);
    await api.history(7);
    await api.offline();
    await api.contacts('dana');
    await api.agents();
    await api.unread();
    await api.setStatus('away');
    await api.transfer(7, 'bob');
    await api.end(7);
    await api.rate(7, 5, 'quick');
    expect(net.calls.map((c) => `${c.init?.method} ${c.url}`)).toEqual([
      `GET ${base}/api/tasks?customer=v%201`,
      `GET ${base}/api/tasks/7/messages?before=151&limit=50`,
      `GET ${base}/api/tasks/7/messages`,
      `GET ${base}/api/offline`,
      `GET ${base}/api/contacts?q=dana`,
      `GET ${base}/api/agents`,
      `GET ${base}/api/unread`,
      `PUT ${base}/api/agents/me/status`,
      `POST ${base}/api/tasks/7/transfer`,
      `POST ${base}/api/tasks/7/end`,
      `POST ${base}/api/tasks/7/rating`,
    ]);
    for (const c of net.calls) {
      expect(c.url).not.toContain('TOK');
      expect((c.init!.headers as Record<string, string>).Authorization).toBe('Bearer TOK');
    }
    expect(JSON.parse(net.calls[8].init!.body as string)).toEqual({ to_agent: 'bob' });
    expect(JSON.parse(net.calls[10].init!.body as string)).toEqual({ score: 5, comment: 'quick' });
  });

  it('turns an error body into an ApiError, with Retry-After on 429', async () => {
    const net = fakeFetch(() => ({
      status: 429,
      headers: { 'Retry-After': '30' },
      body: { error: { code: 'rate_limited', message: 'too many visitors' } },
    }));
    const err = await Api.visitor(base, 'Dana', net.fetch).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 429, code: 'rate_limited', message: 'too many visitors', retryAfter: 30 });
    expect(JSON.parse(net.calls[0].init!.body as string)).toEqual({ name: 'Dana' });
  });

  it('maps a body that is not JSON to a code from the status, and a network failure to status 0', async () => {
    const html = fakeFetch(() => ({ status: 502, body: '<html>bad gateway</html>' }));
    await expect(new Api(base, 't', html.fetch).unread()).rejects.toMatchObject({ status: 502, code: 'http_502' });
    const down = (async () => {
      throw new TypeError('Failed to fetch');
    }) as unknown as typeof fetch;
    await expect(new Api(base, 't', down).unread()).rejects.toMatchObject({ status: 0, code: 'unavailable' });
  });

  it('logs in with a JSON body and no token', async () => {
    const net = fakeFetch(() => ({ body: { user_id: 'alice', token: 'T', name: 'Alice' } }));
    expect(await Api.login(base, 'alice', 's3cret', net.fetch)).toEqual({ user_id: 'alice', token: 'T', name: 'Alice' });
    expect(net.calls[0].url).toBe(`${base}/api/login`);
    expect((net.calls[0].init!.headers as Record<string, string>).Authorization).toBeUndefined();
  });

  it('uploads with fetch, or with XMLHttpRequest when progress is wanted', async () => {
    const net = fakeFetch(() => ({ status: 201, body: { url: 'u', key: 'k', kind: 'picture', content_type: 'image/png' } }));
    const api = new Api(base, 'TOK', net.fetch);
    const file = new Blob(['png']);
    expect(await api.upload(file, 'a.png')).toMatchObject({ kind: 'picture' });
    expect((net.calls[0].init!.body as FormData).get('file')).toBeTruthy();

    const progress: number[] = [];
    class FakeXHR {
      static last: FakeXHR;
      headers: Record<string, string> = {};
      upload: { onprogress: ((e: { lengthComputable: boolean; loaded: number; total: number }) => void) | null } = { onprogress: null };
      status = 0;
      responseText = '';
      url = '';
      onload: (() => void) | null = null;
      onerror: (() => void) | null = null;
      onabort: (() => void) | null = null;
      constructor() {
        FakeXHR.last = this;
      }
      open(_m: string, url: string) {
        this.url = url;
      }
      setRequestHeader(k: string, v: string) {
        this.headers[k] = v;
      }
      getResponseHeader() {
        return null;
      }
      send() {
        this.upload.onprogress?.({ lengthComputable: true, loaded: 1, total: 2 });
        this.status = 201;
        this.responseText = JSON.stringify({ url: 'u2', key: 'k', kind: 'file', content_type: 'application/pdf' });
        this.onload?.();
      }
    }
    vi.stubGlobal('XMLHttpRequest', FakeXHR);
    expect(await api.upload(file, 'a.pdf', (f) => progress.push(f))).toMatchObject({ url: 'u2' });
    expect(progress).toEqual([0.5, 1]);
    expect(FakeXHR.last.headers.Authorization).toBe('Bearer TOK');
    expect(FakeXHR.last.url).toBe(`${base}/api/upload`);
  });
  it('speaks the console\'s endpoints: customer details, queue, quick replies, a transfer reason', async () => {
    const net = fakeFetch((url, init) => {
      if (url.includes('/customers/')) return { body: { user_id: 'v_1', name: 'Dana', first_seen: 1, online: true, devices: ['pc'] } };
      if (url.endsWith('/queue')) return { body: { waiting: 3 } };
      if (url.endsWith('/quick-replies') && init?.method === 'GET') return { body: { quick_replies: [{ id: 7, title: 'hours', content: '9-18', updated_at: 1 }] } };
      if (url.includes('/quick-replies') && init?.method === 'DELETE') return { body: { deleted: 7 } };
      if (url.includes('/quick-replies')) return { status: init?.method === 'POST' ? 201 : 200, body: { id: 7, title: 'hours', content: '8-20', updated_at: 2 } };
      return { body: {} };
    });
    const api = new Api(base, 'TOK', net.fetch);
    expect(await api.customer('v_1/x')).toMatchObject({ name: 'Dana', devices: ['pc'] });
    expect(await api.queue()).toBe(3);
    expect(await api.quickReplies()).toEqual([{ id: 7, title: 'hours', content: '9-18', updated_at: 1 }]);
    expect(await api.addQuickReply('hours', '8-20')).toMatchObject({ id: 7 });
    expect(await api.updateQuickReply(7, 'hours', '8-20')).toMatchObject({ content: '8-20' });
    await api.deleteQuickReply(7);
    await api.transfer(9, 'bob', 'asks about a refund');
    expect(net.calls.map((c) => `${c.init?.method} ${c.url}`)).toEqual([
      `GET ${base}/api/customers/v_1%2Fx`,
      `GET ${base}/api/queue`,
      `GET ${base}/api/quick-replies`,
      `POST ${base}/api/quick-replies`,
      `PUT ${base}/api/quick-replies/7`,
      `DELETE ${base}/api/quick-replies/7`,
      `POST ${base}/api/tasks/9/transfer`,
    ]);
    expect(JSON.parse(net.calls[3].init!.body as string)).toEqual({ title: 'hours', content: '8-20' });
    expect(JSON.parse(net.calls[6].init!.body as string)).toEqual({ to_agent: 'bob', reason: 'asks about a refund' });
    for (const c of net.calls) expect((c.init!.headers as Record<string, string>).Authorization).toBe('Bearer TOK');
  });
});
