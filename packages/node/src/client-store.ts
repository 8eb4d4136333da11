// `@lifeline/node/client-store`: client session stores (issue 15): a resumable connection given one
// resumes its session after the process died. `FileClientSessionStore` keeps it in a file.
export {
  type ClientSessionChange,
  type ClientSessionStore,
  MemoryClientSessionStore,
  type RestoredClientSession,
  type StoredClientSession,
  type StoredOutgoingMessage,
} from '@lifeline/core/resume';
export * from './client-store/file-client-session-store.js';
