export * from './memory-transport.js';
export * from './sequence-counter.js';
