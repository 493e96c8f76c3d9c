// What the host page (through widget.js) or the URL configures, checked.
import { pickLang, type Lang } from '../shared/i18n';

export interface Settings {
  token?: string;
  name?: string;
  locale?: string;
  color?: string;
  position?: 'right' | 'left';
  sound?: boolean;
  title?: string;
  page_url?: string;
  page_title?: string;
  /**
   * The anonymous visitor's token as the loader keeps it in the host page's
   * storage: a third-party iframe's own storage is often blocked (Chrome
   * incognito, Safari), and the visitor must survive a reload.
   */
  visitor_token?: string;
}

export const DEFAULT_COLOR = '#2563eb';

/** A CSS hex colour, or the default: the value ends up in a style property. */
export function brandColor(c: unknown): string {
  return typeof c === 'string' && /^#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(c.trim()) ? c.trim() : DEFAULT_COLOR;
}

const str = (v: unknown, max: number) => (typeof v === 'string' && v.trim() ? v.trim().slice(0, max) : undefined);

/** Keeps the known fields of untrusted settings, with the right types. */
export function cleanSettings(raw: unknown): Settings {
  const r = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  return {
    token: str(r.token, 4096),
    name: str(r.name, 64),
    locale: str(r.locale, 16),
    color: brandColor(r.color),
    position: r.position === 'left' ? 'left' : 'right',
    sound: r.sound !== false,
    title: str(r.title, 80),
    page_url: str(r.page_url, 2048),
    page_title: str(r.page_title, 200),
    visitor_token: str(r.visitor_token, 4096),
  };
}

export function langOf(s: Settings, search: string, browser: readonly string[]): Lang {
  return pickLang(s.locale, new URLSearchParams(search).get('lang'), browser);
}
