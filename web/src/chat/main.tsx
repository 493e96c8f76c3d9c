// Entry of /chat. Inside the widget (?embed=1) it greets the loader and waits
// for kefu:init with the host's settings; as a full page it starts at once.
import { render } from 'preact';
import '../shared/base.css';
import '../shared/messages.css';
import './chat.css';
import { App } from './App';
import { embedded, listen, post, type HostCommand } from './bridge';
import { cleanSettings, langOf, type Settings } from './settings';

const INIT_TIMEOUT_MS = 5000;

// Host commands that arrive before the app listens are kept for it.
let handler: ((c: HostCommand) => void) | null = null;
const early: HostCommand[] = [];
const commands = (fn: (c: HostCommand) => void) => {
  handler = fn;
  early.splice(0).forEach(fn);
  return () => {
    handler = null;
  };
};

function start(settings: Settings) {
  const lang = langOf(settings, location.search, navigator.languages ?? [navigator.language]);
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  const root = document.getElementById('app');
  if (root) render(<App settings={settings} lang={lang} embedded={embedded} commands={commands} />, root);
}

if (embedded) {
  let started = false;
  const go = (s: Settings) => {
    if (started) return;
    started = true;
    start(s);
  };
  listen((c) => {
    if (c.type === 'kefu:init') go(cleanSettings(c.settings));
    else if (handler) handler(c);
    else early.push(c);
  });
  post({ type: 'kefu:hello' });
  // Framed by something other than widget.js: run with defaults.
  setTimeout(() => go(cleanSettings({})), INIT_TIMEOUT_MS);
} else {
  const q = new URLSearchParams(location.search);
  start(cleanSettings({ color: q.get('color') ?? undefined, title: q.get('title') ?? undefined }));
}
