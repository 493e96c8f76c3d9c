// The iframe's side of the postMessage conversation with widget.js. Only
// messages from window.parent are trusted; once the loader said hello back
// (kefu:init), everything goes to that origin alone.
import type { Settings } from './settings';

export type HostCommand =
  | { type: 'kefu:init'; settings: Settings }
  | { type: 'kefu:open' }
  | { type: 'kefu:close' }
  | { type: 'kefu:send-card'; card: Record<string, unknown> }
  | { type: 'kefu:send-order'; order: Record<string, unknown> }
  | { type: 'kefu:set-user'; user: { token?: string; name?: string } };

const COMMANDS = new Set(['kefu:init', 'kefu:open', 'kefu:close', 'kefu:send-card', 'kefu:send-order', 'kefu:set-user']);

export const embedded: boolean =
  window.parent !== window && new URLSearchParams(location.search).get('embed') === '1';

let hostOrigin: string | null = null;

/** Posts to the host page (no-op in full-page mode). */
export function post(msg: { type: string; [k: string]: unknown }): void {
  if (!embedded) return;
  // Before kefu:init only the content-free hello may go to an unknown origin.
  const target = hostOrigin ?? (msg.type === 'kefu:hello' ? '*' : null);
  if (!target) return;
  try {
    window.parent.postMessage(msg, target);
  } catch {
    // detached parent
  }
}

export function listen(fn: (cmd: HostCommand) => void): () => void {
  const onMessage = (e: MessageEvent) => {
    if (!embedded || e.source !== window.parent) return;
    const d = e.data as { type?: unknown } | null;
    if (!d || typeof d !== 'object' || typeof d.type !== 'string' || !COMMANDS.has(d.type)) return;
    if (d.type === 'kefu:init') hostOrigin ??= e.origin === 'null' ? '*' : e.origin;
    else if (hostOrigin && e.origin !== hostOrigin && hostOrigin !== '*') return;
    fn(d as HostCommand);
  };
  window.addEventListener('message', onMessage);
  return () => window.removeEventListener('message', onMessage);
}
