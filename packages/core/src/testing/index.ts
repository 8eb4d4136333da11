export * from './memory-resume-server.js';
export * from './memory-transport.js';
export * from './sequence-counter.js';
export * from './wait-for.js';
