// The console's preferences, remembered in localStorage on this browser.
import { normalizeLang, pickLang, type Lang } from '../shared/i18n';

export interface Prefs {
  sound: boolean;
  notify: boolean;
  lang: Lang;
}

const KEY = 'kefu.agent.prefs';

export function loadPrefs(browser: readonly string[], storage: Pick<Storage, 'getItem'> = localStorage): Prefs {
  let saved: Partial<Prefs> = {};
  try {
    saved = (JSON.parse(storage.getItem(KEY) ?? '{}') as Partial<Prefs>) ?? {};
  } catch {
    // defaults
  }
  return {
    sound: saved.sound !== false,
    notify: saved.notify !== false,
    lang: normalizeLang(saved.lang) ?? pickLang(undefined, null, browser),
  };
}

export function savePrefs(p: Prefs, storage: Pick<Storage, 'setItem'> = localStorage): void {
  try {
    storage.setItem(KEY, JSON.stringify(p));
  } catch {
    // not remembered
  }
}
