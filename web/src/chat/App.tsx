// The customer chat: header, message log, composer, overlays. It renders the
// store's view and forwards what the person does; the host page's commands
// arrive through `commands` (see main.tsx).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { translator, type T } from '../locales';
import type { Lang } from '../shared/i18n';
import { ding } from '../shared/sound';
import { post, type HostCommand } from './bridge';
import { Composer } from '../shared/Composer';
import { Header } from './Header';
import { Lightbox } from '../shared/Lightbox';
import { useFileDrop } from '../shared/drop';
import { MessageList } from './MessageList';
import { cleanSettings, type Settings } from './settings';
import { ChatStore } from './store';

export interface AppProps {
  settings: Settings;
  lang: Lang;
  embedded: boolean;
  /** Registers the handler for host commands; returns an unsubscribe. */
  commands: (fn: (c: HostCommand) => void) => () => void;
}

export function App({ settings, lang, embedded, commands }: AppProps) {
  const t: T = useMemo(() => translator(lang), [lang]);
  const [open, setOpen] = useState(!embedded);
  const [pageVisible, setPageVisible] = useState(document.visibilityState !== 'hidden');
  const [picture, setPicture] = useState<string | null>(null);
  const title = settings.title || t('chatTitle');
  const visible = open && pageVisible;

  const store = useMemo(
    () =>
      new ChatStore({
        token: settings.token,
        name: settings.name,
        visitorToken: settings.visitor_token,
        onVisitor: (token) => post({ type: 'kefu:visitor', token }),
        onReady: (user_id) => post({ type: 'kefu:ready', user_id }),
        onUnread: (count) => post({ type: 'kefu:unread', count }),
        onAgentMessage: (message) => {
          post({ type: 'kefu:message', message: { ...message } });
          if (settings.sound !== false && !store.visibleNow()) ding();
        },
      }),
    [],
  );
  const [view, setView] = useState(store.view);

  useEffect(() => {
    const off = store.subscribe(() => setView(store.view));
    void store.start();
    return () => {
      off();
      store.stop();
    };
  }, []);

  useEffect(() => store.setVisible(visible), [visible]);

  useEffect(() => {
    const onVis = () => setPageVisible(document.visibilityState !== 'hidden');
    document.addEventListener('visibilitychange', onVis);
    return () => document.removeEventListener('visibilitychange', onVis);
  }, []);

  useEffect(
    () =>
      commands((c) => {
        switch (c.type) {
          case 'kefu:open':
            setOpen(true);
            // With a mouse, the composer is ready to type into; on touch
            // screens this would pop the keyboard up over the conversation.
            if (matchMedia('(pointer: fine)').matches) document.querySelector<HTMLTextAreaElement>('.input')?.focus();
            break;
          case 'kefu:close':
            // At once, not after the next render: a reply arriving in
            // between must count as unread.
            store.setVisible(false);
            setOpen(false);
            break;
          case 'kefu:send-card':
            if (c.card && typeof c.card === 'object') store.sendCard('card', c.card);
            break;
          case 'kefu:send-order':
            if (c.order && typeof c.order === 'object') store.sendCard('order', c.order);
            break;
          case 'kefu:set-user': {
            const u = cleanSettings(c.user);
            store.switchUser(u.token, u.name);
            break;
          }
        }
      }),
    [],
  );

  // Full page: the tab title carries the unread count.
  useEffect(() => {
    if (embedded) return;
    document.title = view.unread > 0 ? t('unreadTitle', { n: view.unread, title }) : title;
  }, [view.unread, title]);

  const close = () => {
    store.setVisible(false);
    setOpen(false);
    post({ type: 'kefu:close' });
  };

  const onFiles = (files: File[]) => files.forEach((f) => void store.sendFile(f));
  const drop = useFileDrop(true, onFiles);

  return (
    <div
      class={`app${embedded ? ' embedded' : ''}${drop.dragging ? ' dragging' : ''}`}
      style={{ '--brand': settings.color }}
      {...drop.handlers}
    >
      <Header view={view} t={t} title={title} onClose={embedded ? close : undefined} />
      <MessageList view={view} store={store} t={t} onOpenPicture={setPicture} />
      {view.notice ? (
        <div class="notice" role="alert">
          <span>{t(view.notice.key, view.notice.vars)}</span>
          <button type="button" class="notice-close" aria-label={t('dismiss')} onClick={() => store.dismissNotice()}>
            ×
          </button>
        </div>
      ) : null}
      {view.uploads.map((u) => (
        <div class="upload" key={u.id} role="status">
          <span>{t('uploading', { name: u.name, percent: u.percent })}</span>
          <progress max={100} value={u.percent} aria-label={u.name} />
        </div>
      ))}
      <Composer t={t} onSend={(s) => store.sendText(s)} onFiles={onFiles} onTyping={() => store.typing()} />
      {picture ? <Lightbox src={picture} t={t} onClose={() => setPicture(null)} /> : null}
    </div>
  );
}
