// The pieces of one message as both apps show it: a bubble with its body
// (text, picture, file, card), its time and send state, a system toast, and
// a "withdrawn" note. Everything a person wrote is rendered as text.
import type { ComponentChildren } from 'preact';
import type { ChatMessage } from '../lib/types';
import type { T } from '../locales';
import { OrderCard, ProductCard } from './Cards';
import { formatSize, formatTime } from './format';
import { CheckIcon, ClockIcon, DownloadIcon, FileIcon } from './icons';
import { RichText } from './RichText';
import { safeHttpUrl } from './url';

export interface BubbleProps {
  m: ChatMessage;
  t: T;
  /** The sender's name above the first bubble of a run from the other side. */
  name: string;
  first: boolean;
  onOpenPicture: (src: string) => void;
  onRetry: (key: string) => void;
  /** Per-message actions (withdraw, delete), shown next to the bubble. */
  actions?: ComponentChildren;
}

const dataId = (m: ChatMessage) => (typeof m.id === 'number' ? String(m.id) : undefined);

export function BubbleRow({ m, t, name, first, onOpenPicture, onRetry, actions }: BubbleProps) {
  const time = typeof m.created_at === 'number' ? formatTime(m.created_at) : '';
  return (
    <div class={`row ${m.mine ? 'mine' : 'theirs'}${first ? ' first' : ''}`} data-id={dataId(m)} data-state={m.mine ? m.state : undefined}>
      {!m.mine && first ? <div class="sender">{name}</div> : null}
      <div class="bubble-line">
        <div class={`bubble${bubbleClass(m)}`}>
          <Body m={m} t={t} onOpenPicture={onOpenPicture} />
        </div>
        {actions ? <div class="msg-actions">{actions}</div> : null}
      </div>
      <div class="meta">
        {time ? <time>{time}</time> : null}
        {m.mine ? <StateMark m={m} t={t} /> : null}
      </div>
      {m.mine && m.state === 'failed' ? (
        <div class="failed" role="alert">
          <span>{m.error?.message ? t('sendFailed', { reason: m.error.message }) : t('failed')}</span>
          <button type="button" class="retry" onClick={() => onRetry(m.key)}>
            {t('retry')}
          </button>
        </div>
      ) : null}
    </div>
  );
}

/** A centred grey line (system toasts), or centred `children` (a rating card). */
export function ToastRow({ m, children }: { m: ChatMessage; children?: ComponentChildren }) {
  return (
    <div class="row system" data-id={dataId(m)}>
      {children ?? <div class="toast">{m.content ?? ''}</div>}
    </div>
  );
}

/** A revoked message: the bubble's place stays, its content is gone. */
export function WithdrawnRow({ m, t }: { m: ChatMessage; t: T }) {
  return (
    <div class="row system" data-id={dataId(m)} data-state={m.mine ? m.state : undefined}>
      <div class="toast">{t('withdrawn')}</div>
    </div>
  );
}

function bubbleClass(m: ChatMessage): string {
  if (m.style === 'card' || m.style === 'order') return ' bare';
  if (m.kind === 'picture' || m.kind === 'video') return ' media';
  if (m.kind === 'file' || m.kind === 'unknown') return ' filebubble';
  return '';
}

function StateMark({ m, t }: { m: ChatMessage; t: T }) {
  switch (m.state) {
    case 'sending':
      return (
        <span class="state sending" title={t('sending')} aria-label={t('sending')}>
          <ClockIcon />
        </span>
      );
    case 'sent':
      return (
        <span class="state" title={t('sent')} aria-label={t('sent')}>
          <CheckIcon />
        </span>
      );
    case 'read':
      return (
        <span class="state read" title={t('read')} aria-label={t('read')}>
          <CheckIcon double />
        </span>
      );
    case 'failed':
      return <span class="state failed-mark" aria-hidden="true">!</span>;
    default:
      return null;
  }
}

function Body({ m, t, onOpenPicture }: { m: ChatMessage; t: T; onOpenPicture: (src: string) => void }) {
  const content = m.content ?? '';
  const ext = (m.ext ?? {}) as Record<string, unknown>;
  if (m.style === 'card') return <ProductCard ext={ext} url={m.url} fallback={content} t={t} />;
  if (m.style === 'order') return <OrderCard ext={ext} url={m.url} fallback={content} t={t} />;
  const src = safeHttpUrl(content);
  switch (m.kind) {
    case 'picture':
      if (!src) break;
      return (
        <button type="button" class="thumb" aria-label={t('openPicture')} onClick={() => onOpenPicture(src)}>
          <img src={src} alt={t('picture')} loading="lazy" />
        </button>
      );
    case 'video':
      if (!src) break;
      return <video class="video" src={src} controls preload="metadata" playsInline />;
    case 'audio':
      if (!src) break;
      return <audio class="audio" src={src} controls preload="metadata" />;
    case 'file':
    case 'unknown': {
      if (!src) break;
      const name = fileLabel(m, t('file'));
      const size = typeof ext.size === 'number' ? formatSize(ext.size) : '';
      return (
        <div class="file">
          <span class="file-icon">
            <FileIcon />
          </span>
          <span class="file-text">
            <span class="file-name">{name}</span>
            {size ? <span class="file-size">{size}</span> : null}
          </span>
          <a class="file-dl" href={src} target="_blank" rel="noopener noreferrer" download={name} aria-label={`${t('download')} ${name}`}>
            <DownloadIcon />
          </a>
        </div>
      );
    }
  }
  return (
    <div class="text">
      <RichText text={content} />
    </div>
  );
}

/** A file message's name: ext.name, else the last part of its URL. */
export function fileLabel(m: ChatMessage, fallback: string): string {
  const name = (m.ext as Record<string, unknown> | undefined)?.name;
  if (typeof name === 'string' && name) return name;
  try {
    return decodeURIComponent(new URL(m.content ?? '').pathname.split('/').pop() ?? '') || fallback;
  } catch {
    return fallback;
  }
}
