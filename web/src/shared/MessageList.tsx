// The scrolling message log both apps use: day separators, the rows an app
// renders, the typing indicator, older pages on scrolling to the top
// (keeping the position), and sticking to the bottom unless the reader
// scrolled up (then a "New messages" pill).
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { ChatMessage } from '../lib/types';
import type { T } from '../locales';
import { dayKey, formatDay } from './format';
import { isSystem } from './messages';

const NEAR_TOP = 80;
const NEAR_BOTTOM = 48;

export interface MessageListProps {
  messages: ChatMessage[];
  t: T;
  /** Server time now, for "Today". */
  now: number;
  historyLoaded: boolean;
  loadingOlder: boolean;
  noMoreHistory: boolean;
  loadOlder: () => void;
  /** Who is typing (a name), or null. */
  typing: string | null;
  renderItem: (m: ChatMessage, first: boolean) => JSX.Element;
  /** Shown before the rows (e.g. a welcome when there are none). */
  head?: ComponentChildren;
  /** Shown after the rows (e.g. "this conversation has ended"). */
  foot?: ComponentChildren;
}

export function MessageList(p: MessageListProps) {
  const { messages: msgs, t } = p;
  const ref = useRef<HTMLDivElement>(null);
  const inner = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const [pill, setPill] = useState(false);
  const [, tick] = useState(0);
  const firstKey = msgs[0]?.key;

  // Rendered again every 10 s, so that Withdraw buttons (in the widget as
  // in the console) disappear when the window passes.
  useEffect(() => {
    const id = setInterval(() => tick((n) => n + 1), 10_000);
    return () => clearInterval(id);
  }, []);
  const lastKey = msgs[msgs.length - 1]?.key;
  const prev = useRef({ firstKey, lastKey, height: 0, top: 0 });

  // Read the geometry before this render reaches the DOM.
  const el = ref.current;
  if (el && (prev.current.firstKey !== firstKey || prev.current.lastKey !== lastKey)) {
    prev.current.height = el.scrollHeight;
    prev.current.top = el.scrollTop;
  }

  const toBottom = () => {
    const e = ref.current;
    if (!e) return;
    e.scrollTop = e.scrollHeight;
    atBottom.current = true;
    setPill(false);
  };

  useLayoutEffect(() => {
    const e = ref.current;
    const pr = prev.current;
    if (!e) return;
    const prepended = pr.firstKey !== firstKey && pr.lastKey === lastKey && pr.height > 0;
    const appended = pr.lastKey !== lastKey;
    if (prepended) {
      e.scrollTop = pr.top + (e.scrollHeight - pr.height);
    } else if (appended) {
      const last = msgs[msgs.length - 1];
      if (atBottom.current || last?.mine || !pr.lastKey) toBottom();
      else if (last && !isSystem(last)) setPill(true);
      else toBottom();
    }
    prev.current = { firstKey, lastKey, height: e.scrollHeight, top: e.scrollTop };
    // A short first page leaves nothing to scroll: fetch more right away.
    if (p.historyLoaded && !p.noMoreHistory && !p.loadingOlder && e.scrollHeight <= e.clientHeight + NEAR_TOP) p.loadOlder();
  }, [firstKey, lastKey, p.historyLoaded, p.loadingOlder]);

  // Content that grows later (pictures loading, the typing line, the
  // on-screen keyboard shrinking the view) keeps a bottom-stuck list stuck.
  useEffect(() => {
    const e = ref.current;
    if (!e) return;
    const keep = () => {
      if (atBottom.current) e.scrollTop = e.scrollHeight;
    };
    const ro = typeof ResizeObserver === 'function' ? new ResizeObserver(keep) : null;
    if (ro) {
      ro.observe(e);
      if (inner.current) ro.observe(inner.current);
    }
    window.visualViewport?.addEventListener('resize', keep);
    return () => {
      ro?.disconnect();
      window.visualViewport?.removeEventListener('resize', keep);
    };
  }, []);

  const onScroll = () => {
    const e = ref.current;
    if (!e) return;
    atBottom.current = e.scrollHeight - e.scrollTop - e.clientHeight < NEAR_BOTTOM;
    if (atBottom.current && pill) setPill(false);
    if (e.scrollTop < NEAR_TOP) p.loadOlder();
  };

  const now = p.now;
  const rows: JSX.Element[] = [];
  let lastDay = 0;
  let lastSender: string | null = null;
  msgs.forEach((m: ChatMessage) => {
    const at = typeof m.created_at === 'number' ? m.created_at : now;
    const day = dayKey(at);
    if (day !== lastDay) {
      rows.push(
        <div class="day" key={`d${day}`}>
          <span>{formatDay(at, now, { today: t('today'), yesterday: t('yesterday') })}</span>
        </div>,
      );
      lastDay = day;
      lastSender = null;
    }
    const sender = isSystem(m) || m.is_revoke ? null : m.mine ? '\u0000me' : m.from ?? '';
    rows.push(p.renderItem(m, sender !== lastSender));
    lastSender = sender;
  });

  return (
    <div class="list-wrap">
      <div class="list" ref={ref} role="log" aria-live="polite" aria-label={t('messages')} onScroll={onScroll} tabIndex={0}>
        <div class="list-inner" ref={inner}>
          {p.loadingOlder ? (
            <div class="loading" role="status">
              <span class="spinner" aria-hidden="true" />
              {t('loadingOlder')}
            </div>
          ) : null}
          {p.head}
          {rows}
          {p.foot}
          {p.typing !== null ? (
            <div class="typing" role="status">
              <span class="dots" aria-hidden="true">
                <i />
                <i />
                <i />
              </span>
              <span>{t('typing', { name: p.typing || t('agent') })}…</span>
            </div>
          ) : null}
        </div>
      </div>
      {pill ? (
        <button type="button" class="pill" onClick={toBottom}>
          {t('newMessages')}
        </button>
      ) : null}
    </div>
  );
}
