import { describe, expect, test } from 'vitest';
import { linkify } from './linkify';
import { safeHttpUrl } from './url';

describe('linkify', () => {
  test('plain text stays one text run', () => {
    expect(linkify('hello world')).toEqual([{ text: 'hello world' }]);
  });

  test('http, https and www links become links; surrounding text stays text', () => {
    expect(linkify('see https://shop.example.com/p/42 and www.example.org.')).toEqual([
      { text: 'see ' },
      { text: 'https://shop.example.com/p/42', href: 'https://shop.example.com/p/42' },
      { text: ' and ' },
      { text: 'www.example.org', href: 'https://www.example.org/' },
      { text: '.' },
    ]);
  });

  test('a closing parenthesis belongs to the URL only when it opened inside it', () => {
    const [, link] = linkify('(see https://en.wikipedia.org/wiki/Tea_(drink))');
    expect(link.href).toBe('https://en.wikipedia.org/wiki/Tea_(drink)');
    expect(linkify('(https://example.com)')[1].href).toBe('https://example.com/');
  });

  test('javascript:, data: and other schemes are never links', () => {
    for (const text of ['javascript:alert(1)', 'JaVaScRiPt:alert(1)', 'data:text/html,<script>alert(1)</script>', 'vbscript:x', 'file:///etc/passwd']) {
      expect(linkify(text).every((s) => !s.href)).toBe(true);
    }
  });

  test('HTML payloads come back as the same text, never markup', () => {
    const payload = '<img src=x onerror=alert(1)><script>alert(2)</script>';
    expect(linkify(payload)).toEqual([{ text: payload }]);
  });

  test('a link cannot swallow a quote or angle bracket into an attribute', () => {
    const segs = linkify('x https://a.example/"onmouseover="alert(1) <b>');
    const link = segs.find((s) => s.href);
    expect(link?.href).toBe('https://a.example/');
    expect(segs.map((s) => s.text).join('')).toBe('x https://a.example/"onmouseover="alert(1) <b>');
  });

  test('Chinese punctuation ends a URL', () => {
    const segs = linkify('请看https://example.com/a，谢谢');
    expect(segs.find((s) => s.href)?.text).toBe('https://example.com/a');
  });
});

describe('safeHttpUrl (card, file and picture URLs)', () => {
  test('accepts http(s) and www', () => {
    expect(safeHttpUrl('https://shop.example.com/p/42')).toBe('https://shop.example.com/p/42');
    expect(safeHttpUrl(' http://x.example ')).toBe('http://x.example/');
    expect(safeHttpUrl('www.example.com/a')).toBe('https://www.example.com/a');
  });

  test('refuses everything else', () => {
    for (const bad of ['javascript:alert(5)', ' javascript:alert(1)', 'java\tscript:alert(1)', 'data:image/png;base64,AAAA', '//evil.example/x', '/relative', 'https://', '', null, undefined, 42, { href: 'https://x' }]) {
      expect(safeHttpUrl(bad)).toBeNull();
    }
  });
});
