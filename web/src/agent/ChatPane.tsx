// The open conversation: its header (customer, actions), the message log,
// notices and uploads, and the composer with emoji, files and quick replies.
import { useEffect, useState } from 'preact/hooks';
import type { ChatMessage, QuickReply, TaskSummary } from '../lib';
import type { AT } from '../locales/agent';
import { BubbleRow, ToastRow, WithdrawnRow } from '../shared/Bubble';
import { useFileDrop } from '../shared/drop';
import { Composer } from '../shared/Composer';
import { MessageList } from '../shared/MessageList';
import { isSystem } from '../shared/messages';
import { BackIcon, BoltIcon, EndIcon, InfoIcon, TransferIcon } from './icons';
import { QuickPopup, matchQuickReplies } from './QuickReplies';
import { Stars } from './SidePanel';
import { contactName, type AgentStore, type ContactView, type View } from './store';
import { initial } from './TopBar';
import { hue } from './ContactList';

export interface ChatPaneProps {
  t: AT;
  store: AgentStore;
  view: View;
  contact: ContactView;
  draft: string;
  onDraft: (s: string) => void;
  panelOpen: boolean;
  onTogglePanel: () => void;
  onBack: () => void;
  onEnd: () => void;
  onTransfer: () => void;
  onManageQuick: () => void;
  onOpenPicture: (src: string) => void;
  inputRef: { current: HTMLTextAreaElement | null };
}

export function ChatPane(p: ChatPaneProps) {
  const { t, store, view, contact } = p;
  const name = contactName(contact);
  const open = contact.status === 'open';
  const [quickActive, setQuickActive] = useState(0);
  const [quickClosed, setQuickClosed] = useState(false);

  const quickOpen = open && p.draft.startsWith('/') && !quickClosed;
  const quickMatches = quickOpen ? matchQuickReplies(view.quickReplies, p.draft.slice(1)) : [];
  useEffect(() => {
    if (!p.draft.startsWith('/')) setQuickClosed(false);
    setQuickActive(0);
  }, [p.draft]);

  const insertQuick = (q: QuickReply) => {
    p.onDraft(q.content);
    setQuickClosed(false);
    requestAnimationFrame(() => {
      const a = p.inputRef.current;
      if (!a) return;
      a.focus();
      a.selectionStart = a.selectionEnd = a.value.length;
    });
  };

  const onKey = (e: KeyboardEvent): boolean => {
    if (!quickOpen) return false;
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      setQuickClosed(true);
      return true;
    }
    if (!quickMatches.length) return false;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const d = e.key === 'ArrowDown' ? 1 : -1;
      setQuickActive((i) => (i + d + quickMatches.length) % quickMatches.length);
      return true;
    }
    if ((e.key === 'Enter' && !e.shiftKey) || e.key === 'Tab') {
      e.preventDefault();
      insertQuick(quickMatches[Math.min(quickActive, quickMatches.length - 1)]);
      return true;
    }
    return false;
  };

  const summary = view.customerTasks?.find((x) => x.task_id === contact.task_id);
  const typingFrom = view.typing[contact.task_id];
  const onFiles = (files: File[]) => files.forEach((f) => void store.sendFile(f));
  const drop = useFileDrop(open, onFiles);
  const uploads = view.uploads.filter((u) => u.task === contact.task_id);

  const renderItem = (m: ChatMessage, first: boolean) => {
    if (m.is_revoke) return <WithdrawnRow key={m.key} m={m} t={t} />;
    if (isSystem(m) || m.style === 'toast' || m.style === 'assess') return <ToastRow key={m.key} m={m} />;
    const sender = m.mine ? '' : m.from === contact.user_id ? name : agentName(m.from, view.customerTasks) ?? m.from ?? '';
    const actions =
      typeof m.id === 'number' ? (
        <>
          {store.canRevoke(m) ? (
            <button type="button" class="msg-action" onClick={() => void store.revoke(m.id!)}>
              {t('withdraw')}
            </button>
          ) : null}
          <button type="button" class="msg-action" onClick={() => void store.deleteForMe(m.id!)}>
            {t('deleteForMe')}
          </button>
        </>
      ) : null;
    return (
      <BubbleRow key={m.key} m={m} t={t} name={sender} first={first} onOpenPicture={p.onOpenPicture} onRetry={(k) => store.retry(k)} actions={actions} />
    );
  };

  return (
    <section
      class={`c-chat-pane${drop.dragging ? ' dragging' : ''}`}
      aria-label={name}
      {...drop.handlers}
    >
      <header class="c-chat-head">
        <button type="button" class="c-icon-btn c-back" aria-label={t('back')} onClick={p.onBack}>
          <BackIcon />
        </button>
        <span class="c-avatar" aria-hidden="true" data-hue={hue(contact.user_id)}>
          {initial(name)}
          {contact.online ? <span class="c-online" /> : null}
        </span>
        <div class="c-chat-title">
          <h2>{name}</h2>
          <div class="c-chat-sub">
            <span class={contact.online ? 'c-on' : ''}>{contact.online ? t('online') : t('customerOffline')}</span>
            <span aria-hidden="true"> · </span>
            <span>{contact.status === 'ended' ? t('taskEnded') : contact.status === 'waiting' ? t('taskWaiting') : t('taskOpen')}</span>
          </div>
        </div>
        <div class="c-chat-actions">
          {open ? (
            <>
              <button type="button" class="c-btn" onClick={p.onTransfer} aria-label={t('transfer')}>
                <TransferIcon />
                <span class="c-btn-text">{t('transfer')}</span>
              </button>
              <button type="button" class="c-btn danger" onClick={p.onEnd} aria-label={t('endService')}>
                <EndIcon />
                <span class="c-btn-text">{t('endService')}</span>
              </button>
            </>
          ) : null}
          <button type="button" class="c-icon-btn" aria-label={t('toggleDetails')} aria-pressed={p.panelOpen} aria-controls="c-side" onClick={p.onTogglePanel}>
            <InfoIcon />
          </button>
        </div>
      </header>
      <MessageList
        key={contact.task_id}
        messages={view.task.messages}
        t={t}
        now={store.now()}
        historyLoaded={view.task.historyLoaded}
        loadingOlder={view.task.loadingOlder}
        noMoreHistory={view.task.noMoreHistory}
        loadOlder={() => void store.loadOlder()}
        typing={typingFrom ? name : null}
        renderItem={renderItem}
        foot={contact.status === 'ended' ? <RatingFoot t={t} summary={summary} loaded={view.customerTasks !== null} /> : null}
      />
      {view.notice ? (
        <div class={`notice${view.notice.key === 'transferredTo' ? ' ok' : ''}`} role="alert">
          <span>{t(view.notice.key, view.notice.vars)}</span>
          <button type="button" class="notice-close" aria-label={t('dismiss')} onClick={() => store.dismissNotice()}>
            ×
          </button>
        </div>
      ) : null}
      {uploads.map((u) => (
        <div class="upload" key={u.id} role="status">
          <span>{t('uploading', { name: u.name, percent: u.percent })}</span>
          <progress max={100} value={u.percent} aria-label={u.name} />
        </div>
      ))}
      <Composer
        t={t}
        value={p.draft}
        onValue={p.onDraft}
        onSend={(s) => store.sendText(s)}
        onFiles={onFiles}
        onTyping={() => store.typing()}
        onKey={onKey}
        disabled={!open}
        placeholder={open ? undefined : t('serviceEndedComposer')}
        inputRef={p.inputRef}
        inputAria={quickOpen ? { 'aria-controls': 'c-quick', 'aria-activedescendant': quickMatches.length ? `c-quick-${quickActive}` : undefined } : undefined}
        tools={
          <button type="button" class="tool" aria-label={t('quickReplies')} title={t('quickReplies')} disabled={!open} onClick={p.onManageQuick}>
            <BoltIcon />
          </button>
        }
        popup={
          quickOpen ? (
            <QuickPopup t={t} matches={quickMatches} active={quickActive} onPick={insertQuick} onHover={setQuickActive} onManage={p.onManageQuick} total={view.quickReplies.length} />
          ) : null
        }
      />
    </section>
  );
}

function agentName(id: string | undefined, tasks: TaskSummary[] | null): string | undefined {
  if (!id) return undefined;
  return tasks?.find((x) => x.agent_id === id && x.agent_name)?.agent_name ?? undefined;
}

function RatingFoot({ t, summary, loaded }: { t: AT; summary?: TaskSummary; loaded: boolean }) {
  const r = summary?.rating;
  if (r) {
    return (
      <div class="c-rating-foot" role="status">
        <div class="c-rating-label">{t('customerRating')}</div>
        <Stars score={r.score} t={t} />
        <div class="c-rating-score">{t('ratedScore', { score: r.score })}</div>
        {r.comment ? <blockquote class="c-rating-comment">{r.comment}</blockquote> : null}
      </div>
    );
  }
  return (
    <div class="c-rating-foot pending" role="status">
      {loaded && summary?.status === 'ended' ? t('ratingWaiting') : t('ratingNone')}
    </div>
  );
}
