// The compact top bar: who is signed in, the availability switch, the
// connection state (always shown), language, settings, shortcuts, sign out.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ConnectionState } from '../lib';
import type { AT } from '../locales/agent';
import type { Lang } from '../shared/i18n';
import { GearIcon, KeyboardIcon, LogoutIcon } from './icons';
import type { Prefs } from './settings';

export function LangSelect({ t, lang, onLang }: { t: AT; lang: Lang; onLang: (l: Lang) => void }) {
  return (
    <select class="c-select" aria-label={t('language')} value={lang} onChange={(e) => onLang((e.currentTarget as HTMLSelectElement).value as Lang)}>
      <option value="en">English</option>
      <option value="zh">中文</option>
    </select>
  );
}

export function connLabel(t: AT, s: ConnectionState): string {
  switch (s) {
    case 'connected':
      return t('connected');
    case 'reconnecting':
      return t('reconnecting');
    case 'offline':
    case 'unauthorized':
      return t('connOffline');
    default:
      return t('connecting');
  }
}

export interface TopBarProps {
  t: AT;
  name: string;
  conn: ConnectionState;
  status: 'available' | 'away';
  onStatus: (s: 'available' | 'away') => void;
  prefs: Prefs;
  onPrefs: (p: Partial<Prefs>) => void;
  notifyBlocked: boolean;
  onShortcuts: () => void;
  onSignOut: () => void;
}

export function TopBar(p: TopBarProps) {
  const { t } = p;
  const [menu, setMenu] = useState(false);
  const menuRef = useRef<HTMLDivElement>(null);
  const btnRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (!menu) return;
    const onDown = (e: PointerEvent) => {
      const n = e.target as Node;
      if (!menuRef.current?.contains(n) && !btnRef.current?.contains(n)) setMenu(false);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        setMenu(false);
        btnRef.current?.focus();
      }
    };
    document.addEventListener('pointerdown', onDown);
    window.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('pointerdown', onDown);
      window.removeEventListener('keydown', onKey, true);
    };
  }, [menu]);

  return (
    <header class="c-top">
      <div class="c-brand">
        <span class="c-logo" aria-hidden="true">K</span>
        <span class="c-brand-name">{t('appName')}</span>
      </div>
      <div class={`c-conn ${p.conn}`} role="status">
        <span class="c-conn-dot" aria-hidden="true" />
        <span class="c-conn-text">{connLabel(t, p.conn)}</span>
      </div>
      <div class="c-top-space" />
      <label class={`c-status-pick ${p.status}`}>
        <span class="c-status-dot" aria-hidden="true" />
        <select class="c-select" aria-label={t('status')} value={p.status} onChange={(e) => p.onStatus((e.currentTarget as HTMLSelectElement).value as 'available' | 'away')}>
          <option value="available">{t('available')}</option>
          <option value="away">{t('away')}</option>
        </select>
      </label>
      <LangSelect t={t} lang={p.prefs.lang} onLang={(lang) => p.onPrefs({ lang })} />
      <button type="button" class="c-icon-btn c-hide-phone" aria-label={t('shortcuts')} title={`${t('shortcuts')} (?)`} onClick={p.onShortcuts}>
        <KeyboardIcon />
      </button>
      <div class="c-menu-wrap">
        <button type="button" class="c-icon-btn" ref={btnRef} aria-label={t('settings')} aria-expanded={menu} aria-haspopup="true" onClick={() => setMenu(!menu)}>
          <GearIcon />
        </button>
        {menu ? (
          <div class="c-menu" ref={menuRef} role="group" aria-label={t('settings')}>
            <label class="c-check">
              <input type="checkbox" checked={p.prefs.sound} onChange={(e) => p.onPrefs({ sound: (e.currentTarget as HTMLInputElement).checked })} />
              <span>{t('soundSetting')}</span>
            </label>
            <label class="c-check">
              <input type="checkbox" checked={p.prefs.notify} onChange={(e) => p.onPrefs({ notify: (e.currentTarget as HTMLInputElement).checked })} />
              <span>{t('notifySetting')}</span>
            </label>
            {p.prefs.notify && p.notifyBlocked ? <p class="c-menu-note">{t('notifyBlocked')}</p> : null}
          </div>
        ) : null}
      </div>
      <div class="c-me" title={t('signedInAs', { name: p.name })}>
        <span class="c-me-avatar" aria-hidden="true">
          {initial(p.name)}
        </span>
        <span class="c-me-name">{p.name}</span>
      </div>
      <button type="button" class="c-icon-btn" aria-label={t('signOut')} title={t('signOut')} onClick={p.onSignOut}>
        <LogoutIcon />
      </button>
    </header>
  );
}

export function initial(name: string): string {
  return Array.from(name.trim())[0]?.toUpperCase() ?? '?';
}
