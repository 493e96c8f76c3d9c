// The sign-in form: username and password against POST /api/login.
import { useState } from 'preact/hooks';
import { Api, ApiError } from '../lib';
import type { AT } from '../locales/agent';
import type { Lang } from '../shared/i18n';
import type { AgentSession } from './session';
import { LangSelect } from './TopBar';

export function SignIn({ t, notice, lang, onLang, onSignedIn }: { t: AT; notice: string | null; lang: Lang; onLang: (l: Lang) => void; onSignedIn: (s: AgentSession) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy || !username.trim() || !password) return;
    setBusy(true);
    setError(null);
    try {
      const r = await Api.login('', username.trim(), password);
      onSignedIn({ token: r.token, user_id: r.user_id, name: r.name || r.user_id, ...(r.refresh_token ? { refresh_token: r.refresh_token } : {}) });
    } catch (err) {
      setBusy(false);
      if (err instanceof ApiError && err.status === 401) setError(t('wrongPassword'));
      else setError(t('signInError', { reason: err instanceof Error ? err.message : String(err) }));
    }
  };

  return (
    <div class="c-signin">
      <form class="c-signin-card" onSubmit={submit} noValidate>
        <div class="c-signin-brand">
          <span class="c-logo" aria-hidden="true">K</span>
          <div>
            <div class="c-signin-app">{t('appName')}</div>
            <div class="c-signin-sub">{t('consoleName')}</div>
          </div>
        </div>
        <h1>{t('signInTitle')}</h1>
        <p class="c-muted">{t('signInIntro')}</p>
        {notice ? (
          <div class="c-banner" role="status">
            {notice}
          </div>
        ) : null}
        <label class="c-field">
          <span>{t('username')}</span>
          <input
            type="text"
            name="username"
            autoComplete="username"
            autoCapitalize="off"
            spellcheck={false}
            required
            value={username}
            onInput={(e) => setUsername((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
        <label class="c-field">
          <span>{t('password')}</span>
          <input
            type="password"
            name="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
        {error ? (
          <div class="c-error" role="alert">
            {error}
          </div>
        ) : null}
        <button type="submit" class="c-btn primary block" disabled={busy}>
          {busy ? t('signingIn') : t('signIn')}
        </button>
        <div class="c-signin-foot">
          <LangSelect t={t} lang={lang} onLang={onLang} />
        </div>
      </form>
    </div>
  );
}
