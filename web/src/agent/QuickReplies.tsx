// Quick replies: the `/` popup in the composer and the manager dialog
// (add, edit, delete; stored per agent on the server).
import { useRef, useState } from 'preact/hooks';
import type { QuickReply } from '../lib';
import type { AT } from '../locales/agent';
import { Dialog } from './Dialog';
import { errText } from './store';

/** Replies whose title or text contains the query; title matches first. */
export function matchQuickReplies(list: QuickReply[], query: string): QuickReply[] {
  const q = query.trim().toLowerCase();
  if (!q) return list.slice(0, 50);
  const byTitle = list.filter((r) => r.title.toLowerCase().includes(q));
  const byText = list.filter((r) => !byTitle.includes(r) && r.content.toLowerCase().includes(q));
  return [...byTitle, ...byText].slice(0, 50);
}

export function QuickPopup(p: {
  t: AT;
  matches: QuickReply[];
  total: number;
  active: number;
  onPick: (q: QuickReply) => void;
  onHover: (i: number) => void;
  onManage: () => void;
}) {
  const { t } = p;
  return (
    <div class="c-quick">
      <div class="c-quick-head">
        <span>{t('quickReplies')}</span>
        <button type="button" class="c-link" onMouseDown={(e) => e.preventDefault()} onClick={p.onManage}>
          {t('quickManage')}
        </button>
      </div>
      <div id="c-quick" role="listbox" aria-label={t('quickReplies')}>
        {p.matches.map((q, i) => (
          <div
            key={q.id}
            id={`c-quick-${i}`}
            role="option"
            aria-selected={i === p.active}
            class={`c-quick-item${i === p.active ? ' active' : ''}`}
            onMouseDown={(e) => e.preventDefault()}
            onMouseEnter={() => p.onHover(i)}
            onClick={() => p.onPick(q)}
          >
            <span class="c-quick-title">/{q.title}</span>
            <span class="c-quick-text">{q.content}</span>
          </div>
        ))}
      </div>
      {p.matches.length === 0 ? <div class="c-quick-empty">{p.total ? t('quickNoMatch') : t('noQuickReplies')}</div> : null}
    </div>
  );
}

export function QuickRepliesDialog(p: {
  t: AT;
  list: QuickReply[];
  onSave: (id: number | null, title: string, content: string) => Promise<void>;
  onDelete: (id: number) => Promise<void>;
  onInsert: ((q: QuickReply) => void) | null;
  onClose: () => void;
}) {
  const { t } = p;
  const [editing, setEditing] = useState<QuickReply | null>(null);
  const [title, setTitle] = useState('');
  const [content, setContent] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const titleRef = useRef<HTMLInputElement>(null);

  const reset = () => {
    setEditing(null);
    setTitle('');
    setContent('');
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy || !title.trim() || !content.trim()) return;
    setBusy(true);
    setError(null);
    try {
      await p.onSave(editing?.id ?? null, title.trim(), content.trim());
      reset();
      titleRef.current?.focus();
    } catch (err) {
      setError(t('quickReplyFailed', { reason: errText(err) }));
    } finally {
      setBusy(false);
    }
  };

  const remove = async (q: QuickReply) => {
    setError(null);
    try {
      await p.onDelete(q.id);
      if (editing?.id === q.id) reset();
    } catch (err) {
      setError(t('quickReplyFailed', { reason: errText(err) }));
    }
  };

  return (
    <Dialog title={t('quickReplies')} closeLabel={t('close')} onClose={p.onClose} wide initial={titleRef}>
      <form class="c-qr-form" onSubmit={submit}>
        <div class="c-qr-form-title">{editing ? t('editingReply', { title: editing.title }) : t('newReply')}</div>
        <label class="c-field">
          <span>{t('replyTitle')}</span>
          <input ref={titleRef} type="text" maxLength={64} value={title} onInput={(e) => setTitle((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label class="c-field">
          <span>{t('replyContent')}</span>
          <textarea rows={3} maxLength={2000} value={content} onInput={(e) => setContent((e.currentTarget as HTMLTextAreaElement).value)} />
        </label>
        {error ? (
          <div class="c-error" role="alert">
            {error}
          </div>
        ) : null}
        <div class="c-dialog-actions">
          {editing ? (
            <button type="button" class="c-btn" onClick={reset}>
              {t('cancel')}
            </button>
          ) : null}
          <button type="submit" class="c-btn primary" disabled={busy || !title.trim() || !content.trim()}>
            {editing ? t('saveReply') : t('addReply')}
          </button>
        </div>
      </form>
      <div class="c-qr-list-title">
        {t('quickReplyList')} <span class="c-muted">· {t('quickHint')}</span>
      </div>
      {p.list.length === 0 ? (
        <p class="c-muted c-qr-empty">{t('noQuickReplies')}</p>
      ) : (
        <ul class="c-qr-list">
          {p.list.map((q) => (
            <li key={q.id} class="c-qr-item">
              <div class="c-qr-text">
                <div class="c-quick-title">/{q.title}</div>
                <div class="c-qr-content">{q.content}</div>
              </div>
              <div class="c-qr-actions">
                {p.onInsert ? (
                  <button type="button" class="c-btn small" aria-label={t('insertReply', { title: q.title })} onClick={() => p.onInsert!(q)}>
                    ↵
                  </button>
                ) : null}
                <button
                  type="button"
                  class="c-btn small"
                  aria-label={t('editReply', { title: q.title })}
                  onClick={() => {
                    setEditing(q);
                    setTitle(q.title);
                    setContent(q.content);
                    titleRef.current?.focus();
                  }}
                >
                  ✎
                </button>
                <button type="button" class="c-btn small danger" aria-label={t('deleteReply', { title: q.title })} onClick={() => void remove(q)}>
                  ✕
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
    </Dialog>
  );
}
