// The customer's details (GET /api/customers/{id}) and their conversations
// with ratings (GET /api/tasks?customer=ID).
import type { CustomerInfo, TaskSummary } from '../lib';
import type { AT } from '../locales/agent';
import { formatDay, formatTime } from '../shared/format';
import { StarIcon } from '../shared/icons';
import { hue } from './ContactList';
import { contactName, type ContactView } from './store';
import { initial } from './TopBar';

export function Stars({ score, t }: { score: number; t: AT }) {
  return (
    <span class="c-stars" role="img" aria-label={score === 1 ? t('stars1') : t('starsN', { n: score })}>
      {[1, 2, 3, 4, 5].map((n) => (
        <span key={n} class={n <= score ? 'on' : ''}>
          <StarIcon filled={n <= score} />
        </span>
      ))}
    </span>
  );
}

export function SidePanel({ t, contact, info, tasks, now }: { t: AT; contact: ContactView; info: CustomerInfo | null; tasks: TaskSummary[] | null; now: number }) {
  const name = info?.name?.trim() || contactName(contact);
  const online = info ? info.online : contact.online;
  const when = (ms: number) => `${formatDay(ms, now, { today: t('today'), yesterday: t('yesterday') })} ${formatTime(ms)}`;
  return (
    <div class="c-side-inner">
      <h2 class="c-side-title">{t('customerDetails')}</h2>
      <div class="c-side-card">
        <span class="c-avatar big" aria-hidden="true" data-hue={hue(contact.user_id)}>
          {initial(name)}
        </span>
        <div class="c-side-name">{name}</div>
        <span class={`c-pill${online ? ' on' : ''}`}>{online ? t('online') : t('customerOffline')}</span>
      </div>
      <dl class="c-facts">
        <dt>{t('customerId')}</dt>
        <dd class="c-mono">{contact.user_id}</dd>
        <dt>{t('firstSeen')}</dt>
        <dd>{info ? when(info.first_seen) : '…'}</dd>
        <dt>{t('devices')}</dt>
        <dd>{info ? t('deviceCount', { n: info.devices.length }) : '…'}</dd>
      </dl>
      <h3 class="c-side-sub">{t('earlier')}</h3>
      {tasks === null ? (
        <p class="c-muted">{t('loading')}</p>
      ) : tasks.length === 0 ? (
        <p class="c-muted">{t('noEarlier')}</p>
      ) : (
        <ul class="c-history">
          {tasks.map((x) => (
            <li key={x.task_id} class={`c-history-item${x.task_id === contact.task_id ? ' current' : ''}`}>
              <div class="c-history-top">
                <span>{when(x.created_at)}</span>
                <span class={`c-pill small ${x.status}`}>{x.status === 'ended' ? t('taskEnded') : x.status === 'waiting' ? t('taskWaiting') : t('taskOpen')}</span>
              </div>
              <div class="c-history-sub">
                {x.agent_name || x.agent_id ? t('withAgent', { name: x.agent_name || x.agent_id || '' }) : ''}
                {x.task_id === contact.task_id ? <span class="c-muted"> · {t('current')}</span> : null}
              </div>
              {x.rating ? (
                <div class="c-history-rating">
                  <Stars score={x.rating.score} t={t} />
                  {x.rating.comment ? <span class="c-history-comment">{x.rating.comment}</span> : null}
                </div>
              ) : x.status === 'ended' ? (
                <div class="c-muted c-history-rating">{t('notRated')}</div>
              ) : null}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
