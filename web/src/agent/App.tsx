// The agent console: the sign-in form, or the desk (top bar, contacts, the
// open conversation, the customer panel) with its dialogs, shortcuts,
// sound and desktop notifications.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ChatMessage, QuickReply } from '../lib';
import { agentTranslator, type AT } from '../locales/agent';
import { ChatIcon } from '../shared/icons';
import { Lightbox } from '../shared/Lightbox';
import { ding } from '../shared/sound';
import { ChatPane } from './ChatPane';
import { ContactList } from './ContactList';
import { EndDialog, ShortcutsDialog, TransferDialog } from './Dialogs';
import { filterContacts, inTab, type Tab } from './filter';
import { preview } from './preview';
import { QuickRepliesDialog } from './QuickReplies';
import { clearSession, loadSession, renewSession, saveSession, type AgentSession } from './session';
import { loadPrefs, savePrefs, type Prefs } from './settings';
import { SidePanel } from './SidePanel';
import { SignIn } from './SignIn';
import { AgentStore, contactName, type ContactView } from './store';
import { TopBar } from './TopBar';

declare global {
  interface Window {
    /** Test hook: how many times the new-message sound played. */
    __kefuSounds?: number;
    /** Test hook: the title of every desktop notification shown. */
    __kefuNotifications?: string[];
  }
}

const PHONE = '(max-width: 767px)';

export function App() {
  const [prefs, setPrefsState] = useState<Prefs>(() => loadPrefs(navigator.languages ?? [navigator.language]));
  const t = useMemo(() => agentTranslator(prefs.lang), [prefs.lang]);
  const [session, setSession] = useState<AgentSession | null>(() => loadSession());
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    document.documentElement.lang = prefs.lang === 'zh' ? 'zh-CN' : 'en';
  }, [prefs.lang]);

  const setPrefs = (patch: Partial<Prefs>) => {
    setPrefsState((p) => {
      const next = { ...p, ...patch };
      savePrefs(next);
      return next;
    });
  };

  const signOut = (expired: boolean) => {
    clearSession();
    setSession(null);
    setNotice(expired ? t('sessionEnded') : null);
    document.title = t('appName');
  };

  if (!session) {
    return (
      <SignIn
        t={t}
        notice={notice}
        lang={prefs.lang}
        onLang={(lang) => setPrefs({ lang })}
        onSignedIn={(s) => {
          saveSession(s);
          setNotice(null);
          setSession(s);
        }}
      />
    );
  }
  // Keyed by the agent, not the token: a renewed token keeps the desk as it is.
  return <Desk key={session.user_id} session={session} t={t} prefs={prefs} setPrefs={setPrefs} onSignOut={signOut} />;
}

function inField(e: KeyboardEvent): boolean {
  const el = e.target as HTMLElement | null;
  if (!el) return false;
  const tag = el.tagName;
  return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || el.isContentEditable;
}

type DialogKind = 'end' | 'transfer' | 'shortcuts' | 'quick' | null;

function Desk({ session, t, prefs, setPrefs, onSignOut }: { session: AgentSession; t: AT; prefs: Prefs; setPrefs: (p: Partial<Prefs>) => void; onSignOut: (expired: boolean) => void }) {
  const prefsRef = useRef(prefs);
  prefsRef.current = prefs;
  const tRef = useRef(t);
  tRef.current = t;
  const signOutRef = useRef(onSignOut);
  signOutRef.current = onSignOut;

  const sessionRef = useRef(session);
  const store = useMemo(
    () =>
      new AgentStore({
        session,
        onUnauthorized: () => signOutRef.current(true),
        renew: async () => {
          sessionRef.current = await renewSession(sessionRef.current);
          return sessionRef.current.token;
        },
        onIncoming: (m, c, isNew) => void announce(m, c, isNew),
      }),
    [],
  );
  const [view, setView] = useState(store.view);
  const [query, setQuery] = useState('');
  const [tab, setTab] = useState<Tab>('open');
  const [dialog, setDialog] = useState<DialogKind>(null);
  const [picture, setPicture] = useState<string | null>(null);
  const [phone, setPhone] = useState(() => matchMedia(PHONE).matches);
  const [panel, setPanel] = useState(() => !matchMedia(PHONE).matches && localStorage.getItem('kefu.agent.panel') !== '0');
  const [drafts, setDrafts] = useState<Record<number, string>>({});
  const [notifyBlocked, setNotifyBlocked] = useState(() => typeof Notification !== 'undefined' && Notification.permission === 'denied');
  const searchRef = useRef<HTMLInputElement>(null);
  const inputRef = useRef<HTMLTextAreaElement | null>(null);

  // A new customer message: the sound unless the agent is looking at it,
  // and a desktop notification while the tab is hidden.
  async function announce(m: ChatMessage, c: ContactView, isNew: boolean) {
    const p = prefsRef.current;
    const hidden = document.visibilityState === 'hidden';
    const looking = !hidden && store.view.selected === c.task_id;
    if (p.sound && !looking) {
      ding();
      window.__kefuSounds = (window.__kefuSounds ?? 0) + 1;
    }
    if (!p.notify || !hidden) return;
    let row: ContactView | undefined = c;
    if (isNew && !c.name) {
      await store.loadContacts(); // a new conversation: its name comes with the list
      row = store.contactOf(c.task_id) ?? c;
    }
    const tt = tRef.current;
    const name = contactName(row);
    const title = isNew ? tt('notifyNewTitle', { name }) : tt('notifyTitle', { name });
    (window.__kefuNotifications ??= []).push(title);
    if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
    try {
      const n = new Notification(title, { body: preview(m, tt), tag: `kefu-${c.task_id}` });
      n.onclick = () => {
        window.focus();
        store.select(c.task_id);
        n.close();
      };
    } catch {
      // Some browsers only allow notifications from a service worker.
    }
  }

  useEffect(() => {
    const off = store.subscribe(() => setView(store.view));
    store.setVisible(document.visibilityState !== 'hidden');
    store.start();
    const onVis = () => store.setVisible(document.visibilityState !== 'hidden');
    document.addEventListener('visibilitychange', onVis);
    const mq = matchMedia(PHONE);
    const onMq = () => setPhone(mq.matches);
    mq.addEventListener('change', onMq);
    return () => {
      off();
      store.stop();
      document.removeEventListener('visibilitychange', onVis);
      mq.removeEventListener('change', onMq);
    };
  }, []);

  const previewOf = useMemo(() => {
    const cache = new WeakMap<ContactView, string>();
    return (c: ContactView) => {
      let s = cache.get(c);
      if (s === undefined) cache.set(c, (s = preview(c.last, t)));
      return s;
    };
  }, [t]);

  const rows = useMemo(() => filterContacts(view.contacts, query, tab, previewOf), [view.contacts, query, tab, previewOf]);
  const counts = useMemo(() => {
    let open = 0;
    for (const c of view.contacts) if (inTab(c, 'open')) open++;
    return { open, ended: view.contacts.length - open };
  }, [view.contacts]);
  const totalUnread = useMemo(() => view.contacts.reduce((n, c) => n + c.unread, 0), [view.contacts]);

  useEffect(() => {
    document.title = totalUnread > 0 ? `(${totalUnread}) ${t('appName')}` : t('appName');
  }, [totalUnread, t]);

  const contact = store.contactOf(view.selected);

  // A selected conversation that left the current tab (ended, came back) brings the tab along.
  useEffect(() => {
    if (contact && !inTab(contact, tab) && !query) setTab(contact.status === 'ended' ? 'ended' : 'open');
  }, [contact?.status]);

  const move = (d: 1 | -1) => {
    if (!rows.length) return;
    const i = rows.findIndex((c) => c.task_id === view.selected);
    const next = i < 0 ? (d > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, i + d));
    store.select(rows[next].task_id);
  };
  const moveRef = useRef(move);
  moveRef.current = move;
  const dialogRef = useRef(dialog);
  dialogRef.current = dialog;

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (dialogRef.current || e.defaultPrevented) return; // dialogs handle their own keys
      if (e.altKey && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
        e.preventDefault();
        moveRef.current(e.key === 'ArrowDown' ? 1 : -1);
        return;
      }
      if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === 'k') {
        e.preventDefault();
        searchRef.current?.focus();
        searchRef.current?.select();
        return;
      }
      if (inField(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === '?') {
        e.preventDefault();
        setDialog('shortcuts');
      } else if (e.key === 'j' || e.key === 'J') {
        moveRef.current(1);
      } else if (e.key === 'k' || e.key === 'K') {
        moveRef.current(-1);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const setDraft = (s: string) => {
    if (view.selected !== null) setDrafts((d) => ({ ...d, [view.selected!]: s }));
  };

  const togglePanel = () => {
    const next = !panel;
    setPanel(next);
    if (!phone) localStorage.setItem('kefu.agent.panel', next ? '1' : '0');
  };

  const onPrefs = (patch: Partial<Prefs>) => {
    setPrefs(patch);
    if (patch.notify && typeof Notification !== 'undefined' && Notification.permission === 'default') {
      void Notification.requestPermission().then((r) => setNotifyBlocked(r === 'denied'));
    }
  };

  const insertQuick = (q: QuickReply) => {
    setDraft(q.content);
    setDialog(null);
    requestAnimationFrame(() => inputRef.current?.focus());
  };

  const mode = view.selected !== null && contact ? 'chat' : 'list';
  const showPanel = panel && !!contact;

  return (
    <div class="c-desk">
      <TopBar
        t={t}
        name={session.name}
        conn={view.conn}
        status={view.status}
        onStatus={(s) => void store.setStatus(s)}
        prefs={prefs}
        onPrefs={onPrefs}
        notifyBlocked={notifyBlocked}
        onShortcuts={() => setDialog('shortcuts')}
        onSignOut={() => {
          // Signs out every device of this agent; the desk goes either way.
          void store.logout().finally(() => onSignOut(false));
        }}
      />
      <div class={`c-cols${showPanel ? ' with-panel' : ''}`} data-mode={mode}>
        <nav class="c-contacts" aria-label={t('conversations')}>
          <ContactList
            t={t}
            rows={rows}
            counts={counts}
            tab={tab}
            onTab={setTab}
            query={query}
            onQuery={setQuery}
            queue={view.queue}
            selected={view.selected}
            onSelect={(task) => store.select(task)}
            preview={previewOf}
            now={store.now()}
            searchRef={searchRef}
            loaded={view.contactsLoaded}
          />
        </nav>
        <main class="c-main">
          {contact ? (
            <ChatPane
              t={t}
              store={store}
              view={view}
              contact={contact}
              draft={drafts[contact.task_id] ?? ''}
              onDraft={setDraft}
              panelOpen={showPanel}
              onTogglePanel={togglePanel}
              onBack={() => store.select(null)}
              onEnd={() => setDialog('end')}
              onTransfer={() => setDialog('transfer')}
              onManageQuick={() => setDialog('quick')}
              onOpenPicture={setPicture}
              inputRef={inputRef}
            />
          ) : (
            <div class="c-empty">
              <div class="c-empty-art" aria-hidden="true">
                <ChatIcon />
              </div>
              <h2>{t('pickConversation')}</h2>
              <p class="c-muted">{t('pickConversationHint')}</p>
            </div>
          )}
        </main>
        {showPanel && contact ? (
          <aside class="c-side" id="c-side" aria-label={t('customerDetails')}>
            {phone ? (
              <button type="button" class="c-icon-btn c-side-close" aria-label={t('close')} onClick={togglePanel}>
                ×
              </button>
            ) : null}
            <SidePanel t={t} contact={contact} info={view.customer} tasks={view.customerTasks} now={store.now()} />
          </aside>
        ) : null}
      </div>
      {dialog === 'end' && contact ? (
        <EndDialog t={t} name={contactName(contact)} onConfirm={() => store.end(contact.task_id)} onClose={() => setDialog(null)} />
      ) : null}
      {dialog === 'transfer' && contact ? (
        <TransferDialog
          t={t}
          me={store.me}
          name={contactName(contact)}
          loadAgents={() => store.agents()}
          onTransfer={(to, reason) => store.transfer(contact.task_id, to, reason)}
          onClose={() => setDialog(null)}
        />
      ) : null}
      {dialog === 'shortcuts' ? <ShortcutsDialog t={t} onClose={() => setDialog(null)} /> : null}
      {dialog === 'quick' ? (
        <QuickRepliesDialog
          t={t}
          list={view.quickReplies}
          onSave={(id, title, content) => store.saveQuickReply(id, title, content)}
          onDelete={(id) => store.deleteQuickReply(id)}
          onInsert={contact?.status === 'open' ? insertQuick : null}
          onClose={() => setDialog(null)}
        />
      ) : null}
      {picture ? <Lightbox src={picture} t={t} onClose={() => setPicture(null)} /> : null}
    </div>
  );
}
