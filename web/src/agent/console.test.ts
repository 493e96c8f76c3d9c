// The console's small pure parts: previews, the filter, the session, prefs,
// and the string tables.
import { describe, expect, test } from 'vitest';
import type { ChatMessage } from '../lib';
import { agentEn } from '../locales/agent-en';
import { agentZh } from '../locales/agent-zh';
import { agentTranslator } from '../locales/agent';
import { en } from '../locales/en';
import { filterContacts } from './filter';
import { preview } from './preview';
import { matchQuickReplies } from './QuickReplies';
import { loadSession, saveSession, tokenExpiry } from './session';
import { loadPrefs, savePrefs } from './settings';
import type { ContactView } from './store';

const t = agentTranslator('en');
const msg = (m: Partial<ChatMessage>): ChatMessage => ({ key: 'k', mine: false, kind: 'text', style: 'normal', content: '', ...m });

describe('the last message, as a contact row shows it', () => {
  test('by type', () => {
    expect(preview(msg({ content: 'hi\nthere' }), t)).toBe('hi there');
    expect(preview(msg({ kind: 'picture', content: 'https://x/files/a' }), t)).toBe('[image]');
    expect(preview(msg({ kind: 'file', content: 'https://x/files/a', ext: { name: 'invoice.pdf' } }), t)).toBe('[file] invoice.pdf');
    expect(preview(msg({ style: 'card', content: 'Shoe', ext: { title: 'Trail Runner 2' } }), t)).toBe('[card] Trail Runner 2');
    expect(preview(msg({ style: 'order', content: 'Order 42', ext: { order_no: '42' } }), t)).toBe('[order] Order 42');
    expect(preview(msg({ style: 'toast', category: 'system', content: 'Alice handed you the conversation.' }), t)).toBe('Alice handed you the conversation.');
    expect(preview(msg({ is_revoke: true, content: '' }), t)).toBe('Message withdrawn');
    expect(preview(msg({ mine: true, content: 'ok' }), t)).toBe('You: ok');
    expect(preview(null, t)).toBe('');
    expect(agentTranslator('zh')('previewImage')).toBe('[图片]');
  });
});

describe('filtering the list', () => {
  const row = (user_id: string, name: string | null, status: ContactView['status'], text: string): ContactView => ({
    user_id, name, status, task_id: user_id.length, online: true, unread: 0, at: 0, last: msg({ content: text }),
  });
  const all = [row('v_1', 'Dana', 'open', 'where is my parcel'), row('v_22', 'Eric', 'ended', 'thanks'), row('v_333', null, 'open', 'Refund please')];
  const p = (c: ContactView) => preview(c.last, t);

  test('by tab, then by name, id or last message, ignoring case', () => {
    expect(filterContacts(all, '', 'open', p).map((c) => c.user_id)).toEqual(['v_1', 'v_333']);
    expect(filterContacts(all, '', 'ended', p).map((c) => c.user_id)).toEqual(['v_22']);
    expect(filterContacts(all, 'DANA', 'open', p).map((c) => c.user_id)).toEqual(['v_1']);
    expect(filterContacts(all, 'v_33', 'open', p).map((c) => c.user_id)).toEqual(['v_333']);
    expect(filterContacts(all, 'refund', 'open', p).map((c) => c.user_id)).toEqual(['v_333']);
    expect(filterContacts(all, 'eric', 'open', p)).toEqual([]);
  });

  test('quick replies match the title first, then the text', () => {
    const list = [
      { id: 1, title: 'hours', content: 'We answer 9:00-18:00.', updated_at: 0 },
      { id: 2, title: 'refund', content: 'Refunds take 3 days; see our hours page.', updated_at: 0 },
    ];
    expect(matchQuickReplies(list, 'HOU').map((q) => q.id)).toEqual([1, 2]);
    expect(matchQuickReplies(list, 'days').map((q) => q.id)).toEqual([2]);
    expect(matchQuickReplies(list, '').map((q) => q.id)).toEqual([1, 2]);
  });
});

describe('the session', () => {
  const jwt = (exp: number) => `h.${btoa(JSON.stringify({ sub: 'alice', exp })).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')}.s`;
  const store = () => {
    const m = new Map<string, string>();
    return { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v), removeItem: (k: string) => void m.delete(k), m };
  };

  test('the expiry comes from the token, which is kept only while valid', () => {
    expect(tokenExpiry(jwt(2_000_000_000))).toBe(2_000_000_000_000);
    expect(tokenExpiry('garbage')).toBeNull();
    const s = store();
    saveSession({ token: jwt(2_000), user_id: 'alice', name: 'Alice' }, s);
    expect(loadSession(1_000_000, s)).toMatchObject({ user_id: 'alice', name: 'Alice' });
    expect(loadSession(3_000_000, s)).toBeNull();
    expect(s.m.size).toBe(0);
  });

  test('a session whose access token expired lives on while its refresh token is good', () => {
    const s = store();
    saveSession({ token: jwt(2_000), refresh_token: jwt(9_000), user_id: 'alice', name: 'Alice' }, s);
    expect(loadSession(3_000_000, s)).toMatchObject({ user_id: 'alice', refresh_token: jwt(9_000) });
    expect(loadSession(10_000_000, s)).toBeNull();
  });

  test('prefs: sound and notifications on by default, the language from the browser, then remembered', () => {
    const s = store();
    expect(loadPrefs(['zh-CN'], s)).toEqual({ sound: true, notify: true, lang: 'zh' });
    savePrefs({ sound: false, notify: true, lang: 'en' }, s);
    expect(loadPrefs(['zh-CN'], s)).toEqual({ sound: false, notify: true, lang: 'en' });
  });
});

describe('the console strings', () => {
  test('Chinese has every key, none empty, with the same placeholders', () => {
    expect(Object.keys(agentZh).sort()).toEqual(Object.keys(agentEn).sort());
    const vars = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort();
    for (const k of Object.keys(agentEn) as (keyof typeof agentEn)[]) {
      expect(agentZh[k], k).not.toBe('');
      expect(vars(agentZh[k]), k).toEqual(vars(agentEn[k]));
    }
  });

  test('console keys do not shadow the chat strings they share', () => {
    expect(Object.keys(agentEn).filter((k) => k in en)).toEqual([]);
  });

  test('the names the browser tests use', () => {
    expect(['username', 'password', 'signIn', 'signOut', 'status', 'conversations', 'searchConversations', 'tabOpen', 'tabEnded', 'endService', 'transfer', 'quickReplies', 'transferTitle', 'reason', 'endConfirmTitle', 'shortcuts', 'wrongPassword', 'connected', 'reconnecting'].map((k) => t(k as never))).toEqual([
      'Username', 'Password', 'Sign in', 'Sign out', 'Status', 'Conversations', 'Search conversations', 'Open', 'Ended', 'End service', 'Transfer', 'Quick replies', 'Transfer conversation', 'Reason', 'End service?', 'Keyboard shortcuts', 'Wrong username or password', 'Connected', 'Reconnecting…',
    ]);
  });
});
