// One entry of the customer's message list: a bubble, a system toast, a
// rating card or a "withdrawn" note (the pieces are shared with the console).
import type { ChatMessage } from '../lib/types';
import type { T } from '../locales';
import { BubbleRow, ToastRow, WithdrawnRow } from '../shared/Bubble';
import { isSystem } from '../shared/messages';
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
  if (m.style === 'assess') {
    const task = typeof m.task_id === 'number' ? m.task_id : 0;
    return (
      <ToastRow m={m}>
        <RatingCard t={t} text={m.content ?? ''} rating={view.ratings[task]} onRate={(s, c) => store.rate(task, s, c)} />
      </ToastRow>
    );
  }
  if (m.is_revoke) return <WithdrawnRow m={m} t={t} />;
  if (isSystem(m) || m.style === 'toast') return <ToastRow m={m} />;
  const name = m.mine ? '' : (m.from && view.agentNames[m.from]) || m.from || t('agent');
  const actions = store.canRevoke(m) ? (
    <button type="button" class="msg-action" onClick={() => void store.revoke(m.id!)}>
      {t('withdraw')}
    </button>
  ) : null;
  return (
    <BubbleRow m={m} t={t} name={name} first={first} onOpenPicture={onOpenPicture} onRetry={(k) => store.retry(k)} actions={actions} />
  );
}
