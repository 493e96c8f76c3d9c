// One entry of the message list: a bubble, a system toast, a rating card or
// a "withdrawn" note. Everything a person wrote is rendered as text.
import type { ChatMessage } from '../lib/types';
import type { T } from '../locales';
import { RichText } from '../shared/RichText';
import { formatSize, formatTime } from '../shared/format';
import { safeHttpUrl } from '../shared/url';
import { OrderCard, ProductCard } from './Cards';
import { CheckIcon, ClockIcon, DownloadIcon, FileIcon } from './icons';
import { isSystem } from './messages';
import { RatingCard } from './RatingCard';
import type { ChatStore, View } from './store';

export interface ItemProps {
  m: ChatMessage;
  t: T;
  view: View;
  store: ChatStore;
  /** First of a run from the same sender: show the name. */
  first: boolean;
  onOpenPicture: (src: string) => void;
}

export function MessageItem({ m, t, view, store, first, onOpenPicture }: ItemProps) {
  const dataId = typeof m.id === 'number' ? String(m.id) : undefined;
  if (m.style === 'assess') {
    const task = typeof m.task_id === 'number' ? m.task_id : 0;
    return (
      <div class="row system" data-id={dataId}>
        <RatingCard t={t} text={m.content ?? ''} rating={view.ratings[task]} onRate={(s, c) => store.rate(task, s, c)} />
      </div>
    );
  }
  if (m.is_revoke) {
    return (
      <div class="row system" data-id={dataId} data-state={m.mine ? m.state : undefined}>
        <div class="toast">{t('withdrawn')}</div>
      </div>
    );
  }
  if (isSystem(m) || m.style === 'toast') {
    return (
      <div class="row system" data-id={dataId}>
        <div class="toast">{m.content ?? ''}</div>
      </div>
    );
  }
  const name = m.mine ? '' : (m.from && view.agentNames[m.from]) || m.from || t('agent');
  const time = typeof m.created_at === 'number' ? formatTime(m.created_at) : '';
  return (
    <div class={`row ${m.mine ? 'mine' : 'theirs'}${first ? ' first' : ''}`} data-id={dataId} data-state={m.mine ? m.state : undefined}>
      {!m.mine && first ? <div class="sender">{name}</div> : null}
      <div class={`bubble${bubbleClass(m)}`}>
        <Body m={m} t={t} onOpenPicture={onOpenPicture} />
      </div>
      <div class="meta">
        {time ? <time>{time}</time> : null}
        {m.mine ? <StateMark m={m} t={t} /> : null}
      </div>
      {m.mine && m.state === 'failed' ? (
        <div class="failed" role="alert">
          <span>{m.error?.message ? t('sendFailed', { reason: m.error.message }) : t('failed')}</span>
          <button type="button" class="retry" onClick={() => store.retry(m.key)}>
            {t('retry')}
          </button>
        </div>
      ) : null}
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
      const name = typeof ext.name === 'string' && ext.name ? ext.name : fileName(src) || t('file');
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

function fileName(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
  } catch {
    return '';
  }
}
