// The browser client library: everything the apps need to speak the contract.
export { KefuClient } from './client';
export type { ClientEvents, ClientOptions, WebSocketLike } from './client';
export { Api, ApiError } from './api';
export { tokenExpiry, tokenFresh } from './token';
export type { Tokens } from './token';
export { Conversation, toChat } from './conversation';
export { Backoff } from './backoff';
export { Emitter } from './emitter';
export type * from './types';
