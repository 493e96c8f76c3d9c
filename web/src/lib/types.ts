// The contract's shapes, as the server sends them (docs/protocol.md §2-§7).
// The one place in the front end that names wire fields.

export type Role = 'customer' | 'agent' | 'admin';
export type Category = 'system' | 'customer' | 'manager' | 'heartbeat' | 'ack' | 'receive';
export type Action = 'send' | 'revoke' | 'delete' | 'read' | 'auth' | 'typing' | '';
export type Style = 'normal' | 'card' | 'order' | 'assess' | 'toast';
export type Kind = 'text' | 'picture' | 'video' | 'audio' | 'file' | 'unknown';

export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'rate_limited'
  | 'too_large'
  | 'unavailable'
  | 'internal';

export interface WireError {
  code: ErrorCode;
  message: string;
}

/** One frame, either way. Every field is optional on the wire. */
export interface Frame {
  category?: Category;
  action?: Action;
  style?: Style;
  kind?: Kind;
  id?: number;
  task_id?: number;
  content?: string;
  from?: string;
  to?: string;
  url?: string;
  created_at?: number;
  is_read?: boolean;
  is_revoke?: boolean;
  is_delete?: boolean;
  quote?: number;
  ext?: Record<string, unknown>;
  client_msg_id?: string;
}

/** A stored message (pushed, in history, in /api/offline). */
export interface Message extends Frame {
  id: number;
  task_id: number;
  category: Category;
  style: Style;
  kind: Kind;
  content: string;
  from: string;
  to: string;
  created_at: number;
}

/** Where one of the user's own sends stands. */
export type SendState = 'sending' | 'sent' | 'read' | 'failed';

/**
 * A message as the apps show it: a stored message, or one of the user's
 * own sends that has no ack yet (then `id` is absent and `key` is the
 * client_msg_id).
 */
export interface ChatMessage extends Frame {
  /** Stable across the ack: the client_msg_id for own sends, else `s<id>`. */
  key: string;
  /** Sent by this user (from any of their devices). */
  mine: boolean;
  /** Only on own messages. */
  state?: SendState;
  /** Why a send failed, when state is 'failed'. */
  error?: WireError;
}

/** What a user may send; the library fills in category, client_msg_id, from. */
export interface Draft {
  kind?: Kind;
  style?: Style;
  content: string;
  url?: string;
  ext?: Record<string, unknown>;
  /** Agents: the customer, or task_id. Customers: ignored by the server. */
  to?: string;
  task_id?: number;
  quote?: number;
}

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'unauthorized';

export interface Session {
  user_id: string;
  role: Role;
  device: string;
  conn_id: string;
}

export interface TaskSummary {
  task_id: number;
  status: 'waiting' | 'open' | 'ended';
  customer_id: string;
  agent_id: string | null;
  agent_name: string | null;
  created_at: number;
  ended_at: number | null;
  rating: { score: number; comment: string | null } | null;
}

export interface HistoryPage {
  task_id: number;
  messages: Message[];
  next_before: number | null;
}

export interface Contact {
  user_id: string;
  name: string | null;
  task_id: number;
  task_status: 'waiting' | 'open' | 'ended';
  online: boolean;
  unread: number;
  last_message: Message | null;
}

export interface Agent {
  user_id: string;
  name: string;
  status: 'available' | 'away';
  online: boolean;
  open_tasks: number;
  capacity: number;
}

export interface Upload {
  url: string;
  key: string;
  kind: Kind;
  content_type: string;
}

/** GET /api/customers/{id}. */
export interface CustomerInfo {
  user_id: string;
  name: string | null;
  first_seen: number;
  online: boolean;
  /** One device name per open connection. */
  devices: string[];
}

/** One of an agent's saved answers. */
export interface QuickReply {
  id: number;
  title: string;
  content: string;
  updated_at: number;
}
