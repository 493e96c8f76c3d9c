// The conversation list: search, Open/Ended tabs, the queue, and a
// virtualized listbox (fixed row height; only the rows in view, plus a few,
// are in the DOM), so a thousand conversations scroll smoothly.
import type { Ref } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { AT } from '../locales/agent';
import { formatDay, formatTime, dayKey } from '../shared/format';
import { QueueIcon, SearchIcon } from './icons';
import type { Tab } from './filter';
import { contactName, type ContactView } from './store';
import { initial } from './TopBar';
import { scrollToRow, visibleRange } from './virtual';

export const ROW_HEIGHT = 68;

export interface ContactListProps {
  t: AT;
  rows: ContactView[];
  counts: Record<Tab, number>;
  tab: Tab;
  onTab: (t: Tab) => void;
  query: string;
  onQuery: (q: string) => void;
  queue: number;
  selected: number | null;
  onSelect: (task: number) => void;
  preview: (c: ContactView) => string;
  now: number;
  searchRef: Ref<HTMLInputElement>;
  loaded: boolean;
}

export function ContactList(p: ContactListProps) {
  const { t, rows } = p;
  const box = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const focusAfter = useRef(false);

  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    setHeight(el.clientHeight);
    const ro = typeof ResizeObserver === 'function' ? new ResizeObserver(() => setHeight(el.clientHeight)) : null;
    ro?.observe(el);
    return () => ro?.disconnect();
  }, []);

  // Keep the selected row in view when it changes (keyboard, new messages).
  const selIndex = rows.findIndex((c) => c.task_id === p.selected);
  useEffect(() => {
    const el = box.current;
    if (!el || selIndex < 0) return;
    const top = scrollToRow(selIndex, el.scrollTop, el.clientHeight, ROW_HEIGHT);
    if (top !== el.scrollTop) el.scrollTop = top;
    if (focusAfter.current) {
      focusAfter.current = false;
      requestAnimationFrame(() => el.querySelector<HTMLElement>(`[data-task-id="${p.selected}"]`)?.focus());
    }
  }, [p.selected, selIndex]);

  const range = visibleRange(scrollTop, height, ROW_HEIGHT, rows.length);
  const tabIndexTarget = selIndex >= 0 ? selIndex : 0;

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    let next = -1;
    if (e.key === 'ArrowDown') next = Math.min(rows.length - 1, Math.max(0, selIndex + 1));
    else if (e.key === 'ArrowUp') next = Math.max(0, selIndex - 1);
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = rows.length - 1;
    if (next < 0 || !rows[next]) return;
    e.preventDefault();
    focusAfter.current = true;
    p.onSelect(rows[next].task_id);
  };

  const empty =
    !p.loaded ? t('loading')
    : p.query.trim() ? t('noMatches', { q: p.query.trim() })
    : p.tab === 'open' ? t('noOpen')
    : t('noEnded');

  return (
    <div class="c-contacts-inner">
      <div class="c-search">
        <SearchIcon />
        <input
          ref={p.searchRef}
          type="search"
          aria-label={t('searchConversations')}
          placeholder={t('searchPlaceholder')}
          value={p.query}
          onInput={(e) => p.onQuery((e.currentTarget as HTMLInputElement).value)}
          onKeyDown={(e) => {
            if (e.key === 'Escape' && p.query) {
              e.preventDefault();
              e.stopPropagation();
              p.onQuery('');
            } else if (e.key === 'ArrowDown' && !e.altKey && rows.length) {
              e.preventDefault();
              focusAfter.current = true;
              p.onSelect(rows[Math.max(0, selIndex)].task_id);
              if (selIndex >= 0) requestAnimationFrame(() => box.current?.querySelector<HTMLElement>(`[data-task-id="${rows[selIndex].task_id}"]`)?.focus());
            }
          }}
        />
        <kbd class="c-kbd c-hide-phone" aria-hidden="true">Ctrl K</kbd>
      </div>
      <div class="c-tabs-row">
        <div class="c-tabs" role="tablist" aria-label={t('filter')}>
          {(['open', 'ended'] as const).map((k) => (
            <button
              key={k}
              type="button"
              role="tab"
              class="c-tab"
              aria-selected={p.tab === k}
              aria-controls="c-conversations"
              tabIndex={p.tab === k ? 0 : -1}
              onClick={() => p.onTab(k)}
              onKeyDown={(e) => {
                if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
                  e.preventDefault();
                  const other = k === 'open' ? 'ended' : 'open';
                  p.onTab(other);
                  (e.currentTarget.parentElement?.querySelector(`[data-tab="${other}"]`) as HTMLElement | null)?.focus();
                }
              }}
              data-tab={k}
            >
              {k === 'open' ? t('tabOpen') : t('tabEnded')}
              <span class="c-tab-count">{p.counts[k]}</span>
            </button>
          ))}
        </div>
        <span class={`c-queue${p.queue ? ' busy' : ''}`} title={t('queueLabel', { n: p.queue })}>
          <QueueIcon />
          <span aria-hidden="true">{t('queueWaiting', { n: p.queue })}</span>
          <span class="c-sr">{t('queueLabel', { n: p.queue })}</span>
        </span>
      </div>
      <div
        id="c-conversations"
        class="c-rows"
        ref={box}
        role="listbox"
        aria-label={t('conversations')}
        onScroll={(e) => setScrollTop((e.currentTarget as HTMLDivElement).scrollTop)}
        onKeyDown={onKeyDown}
      >
        {rows.length === 0 ? (
          <div class="c-rows-empty" role="presentation">
            {empty}
          </div>
        ) : (
          <div role="presentation" class="c-rows-space" style={{ height: `${rows.length * ROW_HEIGHT}px` }}>
            {rows.slice(range.start, range.end).map((c, i) => {
              const index = range.start + i;
              return (
                <ContactRow
                  key={c.user_id}
                  c={c}
                  t={t}
                  top={index * ROW_HEIGHT}
                  index={index}
                  count={rows.length}
                  selected={c.task_id === p.selected}
                  focusable={index === tabIndexTarget}
                  preview={p.preview(c)}
                  now={p.now}
                  onSelect={p.onSelect}
                />
              );
            })}
          </div>
        )}
      </div>
    </div>
  );
}

function ContactRow(p: {
  c: ContactView;
  t: AT;
  top: number;
  index: number;
  count: number;
  selected: boolean;
  focusable: boolean;
  preview: string;
  now: number;
  onSelect: (task: number) => void;
}) {
  const { c, t } = p;
  const name = contactName(c);
  const at = c.at ? (dayKey(c.at) === dayKey(p.now) ? formatTime(c.at) : formatDay(c.at, p.now, { today: t('today'), yesterday: t('yesterday') })) : '';
  return (
    <div
      role="option"
      class={`c-row${p.selected ? ' selected' : ''}${c.unread ? ' unread' : ''}`}
      style={{ transform: `translateY(${p.top}px)`, height: `${ROW_HEIGHT}px` }}
      aria-selected={p.selected}
      aria-posinset={p.index + 1}
      aria-setsize={p.count}
      tabIndex={p.focusable ? 0 : -1}
      data-task-id={String(c.task_id)}
      onClick={() => p.onSelect(c.task_id)}
      onKeyDown={(e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          p.onSelect(c.task_id);
        }
      }}
    >
      <span class="c-avatar" aria-hidden="true" data-hue={hue(c.user_id)}>
        {initial(name)}
        {c.online ? <span class="c-online" /> : null}
      </span>
      <span class="c-row-main">
        <span class="c-row-top">
          <span class="c-name">{name}</span>
          <span class="c-sr">{c.online ? t('online') : t('customerOffline')}</span>
          <time class="c-time">{at}</time>
        </span>
        <span class="c-row-bottom">
          <span class="c-preview">{p.preview}</span>
          <span class="c-badge" data-unread={String(c.unread)} aria-label={c.unread ? t('unreadCount', { n: c.unread }) : undefined}>
            {c.unread > 99 ? '99+' : c.unread || ''}
          </span>
        </span>
      </span>
    </div>
  );
}

/** A stable colour (one of 8) per customer for the avatar. */
export function hue(id: string): string {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return String(h % 8);
}
