// `@lifeline/browser/client-store`: a client session store in IndexedDB (issue 15), so a page
// reload or a crashed tab resumes the session. A sub-path of its own: the default bundle does not
// carry it.
export {
  type ClientSessionChange,
  type ClientSessionStore,
  MemoryClientSessionStore,
  type RestoredClientSession,
  type StoredClientSession,
  type StoredOutgoingMessage,
} from '@lifeline/core/resume';
export * from './client-store/indexeddb-client-session-store.js';
