import { describe, expect, test } from 'vitest';
import { hostCopyOf, storedVisitor } from './identity';
import { tokenExpiry, tokenFresh } from '../lib';
import { isAgentMessage, isSystem } from '../shared/messages';
import { brandColor, cleanSettings, DEFAULT_COLOR } from './settings';

const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (claims: object) => `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}.sig`;

describe('host settings', () => {
  test('only hex colours reach the style', () => {
    expect(brandColor('#0f766e')).toBe('#0f766e');
    expect(brandColor('#abc')).toBe('#abc');
    for (const bad of ['red;background:url(x)', 'url(javascript:1)', '#12', 'expression(alert(1))', 7, null]) {
      expect(brandColor(bad)).toBe(DEFAULT_COLOR);
    }
  });

  test('unknown fields are dropped and types enforced', () => {
    const s = cleanSettings({ token: 't', sound: 'no', position: 'top', evil: '<x>', name: 42, title: '  Help  ' });
    expect(s).toMatchObject({ token: 't', sound: true, position: 'right', title: 'Help' });
    expect(s.name).toBeUndefined();
    expect('evil' in s).toBe(false);
    expect(cleanSettings({ sound: false }).sound).toBe(false);
    expect(cleanSettings(null).color).toBe(DEFAULT_COLOR);
  });
});

describe('visitor tokens', () => {
  test('exp is read from the JWT payload', () => {
    expect(tokenExpiry(jwt({ sub: 'v_1', exp: 1_900_000_000 }))).toBe(1_900_000_000_000);
    expect(tokenExpiry('not-a-jwt')).toBeNull();
    expect(tokenExpiry('a.%%%.c')).toBeNull();
  });

  test('a token expiring within a minute counts as expired', () => {
    const now = 1_800_000_000_000;
    expect(tokenFresh(jwt({ exp: now / 1000 + 3600 }), now)).toBe(true);
    expect(tokenFresh(jwt({ exp: now / 1000 + 30 }), now)).toBe(false);
    expect(tokenFresh(jwt({ sub: 'no exp' }), now)).toBe(false);
  });

  test("the host page's copy is the refresh token, and either kind comes back", () => {
    const later = Math.floor(Date.now() / 1000) + 3600;
    const refresh = jwt({ sub: 'v_1', exp: later, typ: 'refresh' });
    const access = jwt({ sub: 'v_1', exp: later });
    expect(hostCopyOf({ token: access, refresh_token: refresh })).toBe(refresh);
    expect(hostCopyOf({ token: access })).toBe(access);
    expect(storedVisitor(refresh)).toEqual({ token: '', refresh_token: refresh });
    expect(storedVisitor(access)).toEqual({ token: access });
    expect(storedVisitor(jwt({ sub: 'v_1', exp: 1000, typ: 'refresh' }))).toBeNull();
    expect(storedVisitor(undefined)).toBeNull();
  });
});

describe('who wrote a message', () => {
  const base = { key: 'k', kind: 'text' as const, content: 'x' };
  test('agents, the customer and the system', () => {
    expect(isAgentMessage({ ...base, mine: false, category: 'manager', from: 'alice' })).toBe(true);
    expect(isAgentMessage({ ...base, mine: true, category: 'customer', from: 'v_1' })).toBe(false);
    expect(isAgentMessage({ ...base, mine: false, category: 'system', from: 'system' })).toBe(false);
    expect(isSystem({ ...base, mine: false, category: 'system', from: 'system', style: 'toast' })).toBe(true);
  });
});
