export * from './testing/fault-proxy.js';
