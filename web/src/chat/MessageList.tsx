// The scrolling message log: day separators, bubbles, the typing indicator,
// older pages on scrolling to the top (keeping the position), and sticking
// to the bottom unless the reader scrolled up (then a "New messages" pill).
import type { JSX } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { ChatMessage } from '../lib/types';
import type { T } from '../locales';
import { dayKey, formatDay } from '../shared/format';
import { MessageItem } from './MessageItem';
import { isSystem } from './messages';
import type { ChatStore, View } from './store';

const NEAR_TOP = 80;
const NEAR_BOTTOM = 48;

export function MessageList({ view, store, t, onOpenPicture }: { view: View; store: ChatStore; t: T; onOpenPicture: (src: string) => void }) {
  const ref = useRef<HTMLDivElement>(null);
  const inner = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const [pill, setPill] = useState(false);
  const msgs = view.messages;
  const firstKey = msgs[0]?.key;
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
    const p = prev.current;
    if (!e) return;
    const prepended = p.firstKey !== firstKey && p.lastKey === lastKey && p.height > 0;
    const appended = p.lastKey !== lastKey;
    if (prepended) {
      e.scrollTop = p.top + (e.scrollHeight - p.height);
    } else if (appended) {
      const last = msgs[msgs.length - 1];
      if (atBottom.current || last?.mine || !p.lastKey) toBottom();
      else if (last && !isSystem(last)) setPill(true);
      else toBottom();
    }
    prev.current = { firstKey, lastKey, height: e.scrollHeight, top: e.scrollTop };
    // A short first page leaves nothing to scroll: fetch more right away.
    if (view.historyLoaded && !view.noMoreHistory && !view.loadingOlder && e.scrollHeight <= e.clientHeight + NEAR_TOP) {
      void store.loadOlder();
    }
  }, [firstKey, lastKey, view.historyLoaded, view.loadingOlder]);

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
    if (e.scrollTop < NEAR_TOP) void store.loadOlder();
  };

  const now = store.now();
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
    rows.push(<MessageItem key={m.key} m={m} t={t} view={view} store={store} first={sender !== lastSender} onOpenPicture={onOpenPicture} />);
    lastSender = sender;
  });

  return (
    <div class="list-wrap">
      <div class="list" ref={ref} role="log" aria-live="polite" aria-label={t('messages')} onScroll={onScroll} tabIndex={0}>
        <div class="list-inner" ref={inner}>
          {view.loadingOlder ? (
            <div class="loading" role="status">
              <span class="spinner" aria-hidden="true" />
              {t('loadingOlder')}
            </div>
          ) : null}
          {view.historyLoaded && msgs.length === 0 ? (
            <div class="row theirs first welcome">
              <div class="bubble">
                <div class="text">{t('welcome')}</div>
              </div>
            </div>
          ) : null}
          {rows}
          {view.serviceEnded ? (
            <div class="ended-hint">
              <strong>{t('ended')}</strong> {t('startNew')}
            </div>
          ) : null}
          {view.typing !== null ? (
            <div class="typing" role="status">
              <span class="dots" aria-hidden="true">
                <i />
                <i />
                <i />
              </span>
              <span>{t('typing', { name: view.typing || t('agent') })}…</span>
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
