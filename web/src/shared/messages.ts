// Small pure questions about messages, shared by the store and the views.
import type { ChatMessage } from '../lib';

export function isSystem(m: ChatMessage): boolean {
  return m.category === 'system' || m.from === 'system';
}

/** Written by an agent (not the customer, not the system). */
export function isAgentMessage(m: ChatMessage): boolean {
  return !m.mine && !isSystem(m) && m.category !== 'customer';
}

/** How long a sender may withdraw a message (the server's --revoke-window default). */
export const REVOKE_WINDOW_MS = 120_000;

/** Own stored messages younger than the revoke window may be withdrawn. */
export function canRevoke(m: ChatMessage, now: number): boolean {
  return m.mine && typeof m.id === 'number' && !m.is_revoke && typeof m.created_at === 'number' && now - m.created_at < REVOKE_WINDOW_MS;
}
