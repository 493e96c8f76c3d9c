// Small pure questions about messages, shared by the store and the views.
import type { ChatMessage } from '../lib';

export function isSystem(m: ChatMessage): boolean {
  return m.category === 'system' || m.from === 'system';
}

/** Written by an agent (not the customer, not the system). */
export function isAgentMessage(m: ChatMessage): boolean {
  return !m.mine && !isSystem(m) && m.category !== 'customer';
}
