// `@lifeline/node/stores/redis`: the session store a fleet of replicas shares (docs/durable-sessions.md).
export * from './redis-session-store.js';
