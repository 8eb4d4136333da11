// The fault-injecting proxy is its own package, `@lifeline/fault-proxy`; this sub-path re-exports it
// so `import { FaultProxy } from '@lifeline/node/testing'` keeps working.
export * from '@lifeline/fault-proxy';
