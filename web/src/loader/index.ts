// widget.js: what a site embeds with one script tag. It draws the launcher
// in a Shadow DOM (so the page's CSS cannot reach it), creates the chat
// iframe at once (hidden, so unread counts arrive while it is closed), and
// talks to the iframe only by postMessage, checking origin and source.
//
// It must run on pages whose CSP allows only Kefu's script and frame: so no
// <style> element, no style attribute, no inline script, no <img> — styles
// are set through CSSOM (`el.style`), icons are SVG elements.
import type { Settings } from '../chat/settings';
import { launcherEn, launcherZh } from '../locales/launcher';

/** What a site may set in `window.kefuSettings` (the chat checks it again). */
type KefuSettings = Omit<Settings, 'page_url' | 'page_title' | 'visitor_token'>;

type Msg = { type: string; [k: string]: unknown };

type Styles = Partial<Record<keyof CSSStyleDeclaration, string>>;

const w = window as unknown as Window & {
  Kefu?: Record<string, unknown>;
  kefuSettings?: KefuSettings;
  __kefuLoader?: true;
};

const SVG = 'http://www.w3.org/2000/svg';
const PANEL_W = 380;
const PANEL_H = 600;
const MOBILE = '(max-width: 669px)';
const GAP = 20;
const SIZE = 56;

function css(el: HTMLElement | SVGElement, s: Styles) {
  Object.assign(el.style, s);
}

function icon(paths: string[], size: number): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  for (const [k, v] of [
    ['viewBox', '0 0 24 24'],
    ['width', String(size)],
    ['height', String(size)],
    ['fill', 'none'],
    ['stroke', 'currentColor'],
    ['stroke-width', '2'],
    ['stroke-linecap', 'round'],
    ['stroke-linejoin', 'round'],
    ['aria-hidden', 'true'],
    ['focusable', 'false'],
  ]) {
    svg.setAttribute(k, v);
  }
  for (const d of paths) {
    const p = document.createElementNS(SVG, 'path');
    p.setAttribute('d', d);
    svg.appendChild(p);
  }
  css(svg, { display: 'block', transition: 'transform .2s, opacity .2s', position: 'absolute' });
  return svg;
}

/** Where widget.js came from: the Kefu server. */
function findOrigin(): string | null {
  let src = (document.currentScript as HTMLScriptElement | null)?.src;
  if (!src) {
    const all = document.querySelectorAll<HTMLScriptElement>('script[src]');
    for (let i = all.length - 1; i >= 0 && !src; i--) {
      if (/\/widget\.js(?:[?#].*)?$/.test(all[i].src)) src = all[i].src;
    }
  }
  try {
    return src ? new URL(src, location.href).origin : null;
  } catch {
    return null;
  }
}

function boot(origin: string) {
  const settings: KefuSettings = { ...(w.kefuSettings ?? {}) };
  const zh = /^zh/i.test(settings.locale || navigator.language || '');
  const t = zh ? launcherZh : launcherEn;
  const color = /^#[0-9a-f]{3,8}$/i.test(settings.color ?? '') ? settings.color! : '#2563eb';
  const side = settings.position === 'left' ? 'left' : 'right';

  let open = false;
  let ready = false;
  let greeted = false;
  let unread = 0;
  const queue: Msg[] = [];

  // ---- DOM ----------------------------------------------------------------
  const host = document.createElement('kefu-widget');
  css(host, { all: 'initial' } as Styles);
  css(host, { position: 'fixed', zIndex: '2147483000', top: '0', left: '0', width: '0', height: '0' });
  // Open, so assistive tools and tests can reach the launcher; the page's
  // CSS still cannot.
  const root = host.attachShadow({ mode: 'open' });

  const frame = document.createElement('iframe');
  frame.src = `${origin}/chat?embed=1`;
  frame.title = t.frameTitle;
  frame.setAttribute('allow', 'autoplay; clipboard-write');
  css(frame, {
    position: 'fixed',
    border: '0',
    margin: '0',
    padding: '0',
    background: '#fff',
    colorScheme: 'light',
    boxShadow: '0 12px 48px rgba(15,23,42,.22), 0 2px 8px rgba(15,23,42,.08)',
    transition: 'opacity .2s ease, transform .2s ease, visibility 0s linear .2s',
    transformOrigin: `bottom ${side}`,
  });

  const button = document.createElement('button');
  button.type = 'button';
  button.setAttribute('aria-haspopup', 'dialog');
  css(button, {
    position: 'fixed',
    bottom: `${GAP}px`,
    [side]: `${GAP}px`,
    width: `${SIZE}px`,
    height: `${SIZE}px`,
    borderRadius: '50%',
    border: '0',
    padding: '0',
    margin: '0',
    cursor: 'pointer',
    display: 'grid',
    placeItems: 'center',
    background: color,
    color: '#fff',
    boxShadow: '0 6px 20px rgba(15,23,42,.25)',
    transition: 'transform .15s ease, box-shadow .15s ease',
    outline: 'none',
    WebkitTapHighlightColor: 'transparent',
  } as Styles);
  const chatIcon = icon(['M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z'], 26);
  const closeIcon = icon(['M18 6 6 18', 'm6 6 12 12'], 26);
  const badge = document.createElement('span');
  badge.setAttribute('aria-hidden', 'true');
  css(badge, {
    position: 'absolute',
    top: '-3px',
    [side === 'right' ? 'right' : 'left']: '-3px',
    minWidth: '20px',
    height: '20px',
    padding: '0 5px',
    boxSizing: 'border-box',
    borderRadius: '10px',
    background: '#ef4444',
    color: '#fff',
    border: '2px solid #fff',
    font: '700 11px/16px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif',
    textAlign: 'center',
    display: 'none',
  } as Styles);
  button.append(chatIcon, closeIcon, badge);

  // A visible focus ring for keyboard users, without a stylesheet.
  button.addEventListener('focus', () => {
    let kb = true;
    try {
      kb = button.matches(':focus-visible');
    } catch {
      // old browser: always show it
    }
    if (kb) css(button, { outline: `3px solid ${color}`, outlineOffset: '3px' });
  });
  button.addEventListener('blur', () => css(button, { outline: 'none' }));
  button.addEventListener('mouseenter', () => css(button, { transform: 'scale(1.06)' }));
  button.addEventListener('mouseleave', () => css(button, { transform: '' }));
  button.addEventListener('click', () => toggle());

  root.append(frame, button);

  const mq = w.matchMedia ? w.matchMedia(MOBILE) : null;

  function layout() {
    const mobile = !!mq?.matches;
    if (mobile) {
      css(frame, {
        top: '0', left: '0', right: '', bottom: '',
        width: '100vw', height: '100vh', borderRadius: '0',
      });
      css(frame, { height: '100dvh' }); // ignored where unsupported
    } else {
      css(frame, {
        top: '', bottom: `${GAP + SIZE + 14}px`, left: side === 'left' ? `${GAP}px` : '', right: side === 'right' ? `${GAP}px` : '',
        width: `${PANEL_W}px`, height: `min(${PANEL_H}px, calc(100vh - ${GAP * 2 + SIZE + 14}px))`,
        maxWidth: `calc(100vw - ${GAP * 2}px)`, borderRadius: '16px',
      });
    }
    css(frame, open
      ? { visibility: 'visible', opacity: '1', transform: 'none', pointerEvents: 'auto', transition: 'opacity .2s ease, transform .2s ease' }
      : { visibility: 'hidden', opacity: '0', transform: 'translateY(12px) scale(.98)', pointerEvents: 'none', transition: 'opacity .2s ease, transform .2s ease, visibility 0s linear .2s' });
    css(button, { display: open && mobile ? 'none' : 'grid' });
    css(chatIcon, { opacity: open ? '0' : '1', transform: open ? 'rotate(-45deg) scale(.6)' : 'none' });
    css(closeIcon, { opacity: open ? '1' : '0', transform: open ? 'none' : 'rotate(45deg) scale(.6)' });
    button.setAttribute('aria-label', open ? t.closeChat : t.openChat);
    button.setAttribute('aria-expanded', String(open));
    frame.setAttribute('aria-hidden', String(!open));
    frame.tabIndex = open ? 0 : -1;
  }
  mq?.addEventListener?.('change', layout);

  // ---- unread, title ------------------------------------------------------
  const PREFIX = /^\(\d+\)\s/;
  function setUnread(n: number) {
    unread = n > 0 ? Math.floor(n) : 0;
    badge.textContent = unread > 99 ? '99+' : String(unread);
    css(badge, { display: unread > 0 ? 'block' : 'none' });
    const base = document.title.replace(PREFIX, '');
    const next = unread > 0 ? `(${unread}) ${base}` : base;
    if (document.title !== next) document.title = next;
  }

  // ---- the anonymous visitor ----------------------------------------------
  // Kept in the host page's storage: the iframe is third-party here, and
  // browsers often block or wipe a third-party frame's own storage.
  const VISITOR = `kefu.visitor@${origin}`;
  function visitor(token?: unknown): string | undefined {
    try {
      if (token === undefined) return localStorage.getItem(VISITOR) ?? undefined;
      if (typeof token === 'string' && token.length < 4096) localStorage.setItem(VISITOR, token);
      else localStorage.removeItem(VISITOR);
    } catch {
      // storage blocked here too: the visitor lasts for this page
    }
    return undefined;
  }

  // ---- messaging ----------------------------------------------------------
  function post(m: Msg) {
    frame.contentWindow?.postMessage(m, origin);
  }

  /** Commands that need a signed-in chat wait for kefu:ready. */
  function command(m: Msg) {
    if (ready) post(m);
    else queue.push(m);
  }

  function fire(type: string, detail: unknown) {
    w.dispatchEvent(new CustomEvent(type, { detail }));
  }

  w.addEventListener('message', (e: MessageEvent) => {
    if (e.origin !== origin || e.source !== frame.contentWindow) return;
    const d = e.data as Msg | null;
    if (!d || typeof d !== 'object' || typeof d.type !== 'string') return;
    switch (d.type) {
      case 'kefu:hello':
        // (Re)loaded iframe: hand it the settings and the panel's state.
        greeted = true;
        ready = false;
        post({
          type: 'kefu:init',
          settings: {
            ...settings,
            locale: settings.locale || navigator.language,
            page_url: location.href,
            page_title: document.title.replace(PREFIX, ''),
            visitor_token: settings.token ? undefined : visitor(),
          },
        });
        if (open) post({ type: 'kefu:open' });
        break;
      case 'kefu:ready':
        ready = true;
        queue.splice(0).forEach(post);
        fire('kefu:ready', { user_id: d.user_id });
        break;
      case 'kefu:unread':
        setUnread(Number(d.count) || 0);
        fire('kefu:unread', { count: unread });
        break;
      case 'kefu:message':
        fire('kefu:message', d.message);
        break;
      case 'kefu:close':
        setOpen(false, true);
        break;
      case 'kefu:visitor':
        if (!settings.token) visitor(d.token ?? null);
        break;
    }
  });

  function setOpen(v: boolean, focusLauncher = false) {
    if (open === v) return;
    open = v;
    layout();
    if (greeted) post({ type: v ? 'kefu:open' : 'kefu:close' });
    if (v) frame.focus();
    else if (focusLauncher) button.focus();
  }

  function toggle() {
    setOpen(!open, true);
  }

  // ---- public API ---------------------------------------------------------
  const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' ? { ...(v as object) } : {});
  w.Kefu = {
    open: () => setOpen(true),
    close: () => setOpen(false),
    toggle,
    setUser: (u: unknown) => {
      const user = obj(u);
      settings.token = typeof user.token === 'string' ? user.token : undefined;
      settings.name = typeof user.name === 'string' ? user.name : undefined;
      // Pending cards were meant for the previous user.
      queue.length = 0;
      if (greeted) post({ type: 'kefu:set-user', user: { token: settings.token, name: settings.name } });
    },
    sendCard: (card: unknown) => command({ type: 'kefu:send-card', card: obj(card) }),
    sendOrder: (order: unknown) => command({ type: 'kefu:send-order', order: obj(order) }),
  };

  layout();
  (document.body ?? document.documentElement).appendChild(host);
}

// A second copy of the script (or a second tag) does nothing. The origin
// must be read now: document.currentScript is only set while this runs.
const origin = w.__kefuLoader ? null : findOrigin();
if (origin) {
  w.__kefuLoader = true;
  if (document.body) boot(origin);
  else document.addEventListener('DOMContentLoaded', () => boot(origin), { once: true });
}
