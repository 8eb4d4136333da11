// `@lifeline/node/server`: the server half of the resume protocol (docs/protocol.md).

export * from './server/create-resume-server.js';
export * from './server/fenced-session-store.js';
export * from './server/memory-session-store.js';
export * from './server/net-adapter.js';
export * from './server/open-sqlite-database.js';
export * from './server/redis-session-store.js';
export * from './server/resume-server.js';
export * from './server/server-session.js';
export * from './server/session-store.js';
export * from './server/sqlite-session-store.js';
export * from './server/ws-adapter.js';
