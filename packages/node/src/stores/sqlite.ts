// `@lifeline/node/stores/sqlite`: the embedded durable session store (one host; docs/durable-sessions.md).
export * from './open-sqlite-database.js';
export * from './sqlite-session-store.js';
