// Splits message text into plain runs and links, so a view can render the
// text as text nodes and only safe http(s) URLs as anchors.
import { safeHttpUrl } from './url';

export type Segment = { text: string; href?: undefined } | { text: string; href: string };

// http(s)://… or www.… up to whitespace or a character that cannot end a URL
// in running text (quotes, angle brackets, CJK punctuation).
const URL_RE = /\b(?:https?:\/\/|www\.)[^\s<>"'`\u3000-\u303f\uff01-\uff5e]+/gi;
// Punctuation that usually closes the sentence, not the URL.
const TRAILING = /[.,;:!?)\]}'"]+$/;

export function linkify(text: string): Segment[] {
  const out: Segment[] = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let url = m[0];
    const start = m.index ?? 0;
    // Keep a closing parenthesis that balances an opening one inside the URL.
    const trail = url.match(TRAILING)?.[0] ?? '';
    if (trail) {
      let cut = trail.length;
      if (trail.startsWith(')') && url.includes('(')) cut -= 1;
      if (cut > 0) url = url.slice(0, url.length - cut);
    }
    const href = safeHttpUrl(url);
    if (!href) continue;
    if (start > last) out.push({ text: text.slice(last, start) });
    out.push({ text: url, href });
    last = start + url.length;
  }
  if (last < text.length) out.push({ text: text.slice(last) });
  return out;
}
