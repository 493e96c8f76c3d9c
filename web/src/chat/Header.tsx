// The coloured top bar: title, who is serving, the connection line (only when
// not connected) and, inside the widget, a close button.
import type { T } from '../locales';
import { CloseIcon } from '../shared/icons';
import type { View } from './store';

export function Header({ view, t, title, onClose }: { view: View; t: T; title: string; onClose?: () => void }) {
  const agent = view.agentName;
  const conn =
    view.conn === 'reconnecting' ? t('reconnecting')
    : view.conn === 'offline' ? t('offline')
    : view.conn === 'connecting' || view.conn === 'starting' ? t('connecting')
    : null;
  return (
    <header class="header">
      <div class="avatar" aria-hidden="true">
        {(agent || title).trim().charAt(0).toUpperCase() || '?'}
        {view.conn === 'connected' ? <span class="online-dot" /> : null}
      </div>
      <div class="header-text">
        <h1 class="title">{title}</h1>
        <div class="subtitle">{agent ? t('servedBy', { name: agent }) : t('subtitleDefault')}</div>
        {conn ? (
          <div class={`conn ${view.conn}`} role="status">
            {conn}
          </div>
        ) : null}
      </div>
      {onClose ? (
        <button type="button" class="header-close" aria-label={t('closeChat')} onClick={onClose}>
          <CloseIcon size={22} />
        </button>
      ) : null}
    </header>
  );
}
