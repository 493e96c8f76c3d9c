import { describe, expect, test } from 'vitest';
import { en } from '../locales/en';
import { launcherEn, launcherZh } from '../locales/launcher';
import { zh } from '../locales/zh';
import { translator } from '../locales';
import { fill, normalizeLang, pickLang } from './i18n';

describe('locale tables', () => {
  test('Chinese has exactly the keys of English, none empty', () => {
    expect(Object.keys(zh).sort()).toEqual(Object.keys(en).sort());
    for (const [k, v] of Object.entries(zh)) expect(v, k).not.toBe('');
    expect(Object.keys(launcherZh).sort()).toEqual(Object.keys(launcherEn).sort());
  });

  test('both languages use the same placeholders in each string', () => {
    const vars = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort();
    for (const k of Object.keys(en) as (keyof typeof en)[]) expect(vars(zh[k]), k).toEqual(vars(en[k]));
  });

  test('the names the browser tests use', () => {
    const t = translator('en');
    expect([t('openChat'), t('message'), t('send'), t('attachFile'), t('emoji'), t('retry'), t('submitRating')]).toEqual([
      'Open chat', 'Message', 'Send', 'Attach file', 'Emoji', 'Retry', 'Submit rating',
    ]);
    expect(translator('zh')('message')).toBe('消息');
    expect(translator('zh')('openChat')).toBe('打开聊天');
  });
});

describe('choosing a language', () => {
  test('setting, then ?lang=, then the browser, then English', () => {
    expect(pickLang('zh', 'en', ['en-US'])).toBe('zh');
    expect(pickLang(undefined, 'zh-CN', ['en-US'])).toBe('zh');
    expect(pickLang(undefined, null, ['fr-FR', 'zh-TW'])).toBe('zh');
    expect(pickLang('de', null, ['fr'])).toBe('en');
    expect(normalizeLang('ZH_cn')).toBe('zh');
    expect(normalizeLang('en-GB')).toBe('en');
    expect(normalizeLang('ja')).toBeNull();
  });

  test('placeholders are filled, unknown ones kept', () => {
    expect(fill('{name} is typing', { name: 'Alice' })).toBe('Alice is typing');
    expect(fill('{a} {b}', { a: 1 })).toBe('1 {b}');
    expect(translator('en')('starsN', { n: 3 })).toBe('3 stars');
  });
});
