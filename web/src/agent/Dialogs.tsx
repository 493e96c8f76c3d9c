// The console's service dialogs: end service, transfer, keyboard shortcuts.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Agent } from '../lib';
import type { AT } from '../locales/agent';
import { Dialog } from './Dialog';
import { errText } from './store';

export function EndDialog({ t, name, onConfirm, onClose }: { t: AT; name: string; onConfirm: () => Promise<void>; onClose: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const confirm = useRef<HTMLButtonElement>(null);
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      onClose();
    } catch (e) {
      setBusy(false);
      setError(t('endFailed', { reason: errText(e) }));
    }
  };
  return (
    <Dialog title={t('endConfirmTitle')} closeLabel={t('close')} onClose={onClose} initial={confirm}>
      <p class="c-dialog-text">{t('endConfirmBody', { name })}</p>
      {error ? (
        <div class="c-error" role="alert">
          {error}
        </div>
      ) : null}
      <div class="c-dialog-actions">
        <button type="button" class="c-btn" onClick={onClose}>
          {t('cancel')}
        </button>
        <button type="button" class="c-btn primary danger" ref={confirm} disabled={busy} onClick={() => void go()}>
          {t('endService')}
        </button>
      </div>
    </Dialog>
  );
}

export function TransferDialog(p: {
  t: AT;
  me: string;
  name: string;
  loadAgents: () => Promise<Agent[]>;
  onTransfer: (to: Agent, reason: string) => Promise<void>;
  onClose: () => void;
}) {
  const { t } = p;
  const [agents, setAgents] = useState<Agent[] | null>(null);
  const [choice, setChoice] = useState<string | null>(null);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    p.loadAgents().then(
      (list) => setAgents(list.filter((a) => a.user_id !== p.me)),
      (e) => {
        setAgents([]);
        setError(t('transferFailed', { reason: errText(e) }));
      },
    );
  }, []);

  const usable = (a: Agent) => a.online && a.open_tasks < a.capacity;
  const chosen = agents?.find((a) => a.user_id === choice);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!chosen || busy) return;
    setBusy(true);
    setError(null);
    try {
      await p.onTransfer(chosen, reason);
      p.onClose();
    } catch (err) {
      setBusy(false);
      setError(t('transferFailed', { reason: errText(err) }));
    }
  };

  return (
    <Dialog title={t('transferTitle')} closeLabel={t('close')} onClose={p.onClose} wide>
      <form onSubmit={submit}>
        <p class="c-dialog-text">{t('transferIntro', { name: p.name })}</p>
        <fieldset class="c-agents">
          <legend>{t('chooseAgent')}</legend>
          {agents === null ? <p class="c-muted">{t('loading')}</p> : null}
          {agents && agents.length === 0 ? <p class="c-muted">{t('noOtherAgents')}</p> : null}
          {agents?.map((a) => {
            const ok = usable(a);
            const state = !a.online ? t('customerOffline') : a.status === 'away' ? t('away') : t('available');
            const load = t('agentLoad', { open: a.open_tasks, capacity: a.capacity }) + (a.open_tasks >= a.capacity ? ` · ${t('agentFull')}` : '');
            return (
              <label key={a.user_id} class={`c-agent${ok ? '' : ' disabled'}${choice === a.user_id ? ' chosen' : ''}`}>
                <input
                  type="radio"
                  name="agent"
                  value={a.user_id}
                  disabled={!ok}
                  checked={choice === a.user_id}
                  aria-labelledby={`agent-name-${a.user_id}`}
                  aria-describedby={`agent-${a.user_id}`}
                  onChange={() => setChoice(a.user_id)}
                />
                <span class="c-agent-name" id={`agent-name-${a.user_id}`}>{a.name || a.user_id}</span>
                <span class="c-agent-state" id={`agent-${a.user_id}`}>
                  <span class={`c-dot ${!a.online ? 'off' : a.status}`} aria-hidden="true" />
                  {state} · {load}
                </span>
              </label>
            );
          })}
        </fieldset>
        <label class="c-field">
          <span>{t('reason')}</span>
          <textarea rows={3} maxLength={500} placeholder={t('reasonPlaceholder')} value={reason} onInput={(e) => setReason((e.currentTarget as HTMLTextAreaElement).value)} />
        </label>
        {error ? (
          <div class="c-error" role="alert">
            {error}
          </div>
        ) : null}
        <div class="c-dialog-actions">
          <button type="button" class="c-btn" onClick={p.onClose}>
            {t('cancel')}
          </button>
          <button type="submit" class="c-btn primary" disabled={!chosen || busy}>
            {t('transfer')}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function ShortcutsDialog({ t, onClose }: { t: AT; onClose: () => void }) {
  const mac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform ?? '');
  const mod = mac ? '⌘' : 'Ctrl';
  const rows: [string[], string][] = [
    [['Alt', '↓', '↑'], t('kbNextPrev')],
    [['J', 'K'], t('kbJK')],
    [[mod, 'K'], t('kbSearch')],
    [['Enter'], t('kbSend')],
    [['Shift', 'Enter'], t('kbNewline')],
    [['/'], t('kbSlash')],
    [['Esc'], t('kbEsc')],
    [['?'], t('kbHelp')],
  ];
  return (
    <Dialog title={t('shortcuts')} closeLabel={t('close')} onClose={onClose} initial="box">
      <dl class="c-keys">
        {rows.map(([keys, what]) => (
          <div class="c-key-row" key={what}>
            <dt>
              {keys.map((k, i) => (
                <kbd key={i} class="c-kbd">
                  {k}
                </kbd>
              ))}
            </dt>
            <dd>{what}</dd>
          </div>
        ))}
      </dl>
    </Dialog>
  );
}
