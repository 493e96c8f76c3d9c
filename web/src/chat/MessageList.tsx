// The customer's message log: the shared list with the welcome line, the
// "service ended" hint and the customer's own message items.
import { MessageList as Log } from '../shared/MessageList';
import type { T } from '../locales';
import { MessageItem } from './MessageItem';
import type { ChatStore, View } from './store';

export function MessageList({ view, store, t, onOpenPicture }: { view: View; store: ChatStore; t: T; onOpenPicture: (src: string) => void }) {
  return (
    <Log
      messages={view.messages}
      t={t}
      now={store.now()}
      historyLoaded={view.historyLoaded}
      loadingOlder={view.loadingOlder}
      noMoreHistory={view.noMoreHistory}
      loadOlder={() => void store.loadOlder()}
      typing={view.typing}
      renderItem={(m, first) => <MessageItem key={m.key} m={m} t={t} view={view} store={store} first={first} onOpenPicture={onOpenPicture} />}
      head={
        view.historyLoaded && view.messages.length === 0 ? (
          <div class="row theirs first welcome">
            <div class="bubble">
              <div class="text">{t('welcome')}</div>
            </div>
          </div>
        ) : null
      }
      foot={
        view.serviceEnded ? (
          <div class="ended-hint">
            <strong>{t('ended')}</strong> {t('startNew')}
          </div>
        ) : null
      }
    />
  );
}
