// Which URLs may become a link or an image source. Anything a user or a
// host page supplies goes through here before it reaches an href or src.

/**
 * The URL as an absolute http(s) URL string, or null for anything else
 * (`javascript:`, `data:`, relative paths, garbage). `www.` hosts get https.
 */
export function safeHttpUrl(raw: unknown): string | null {
  if (typeof raw !== 'string') return null;
  let s = raw.trim();
  if (!s) return null;
  if (/^www\./i.test(s)) s = `https://${s}`;
  if (!/^https?:\/\//i.test(s)) return null;
  try {
    const u = new URL(s);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    if (!u.hostname) return null;
    return u.href;
  } catch {
    return null;
  }
}
