// durable-server-process.ts, loaded ahead: this process loads the server's modules, prints
// {"ready":true}, waits for a line on stdin, then runs durable-server-process.ts with the same
// argv (port, store, upstream total, rate, start, log), which then only opens the store and
// listens: a test restarts a killed server in milliseconds instead of a second or more of loading.
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import '@lifeline/node/server';
import './relay-app.js';

process.stdout.write('{"ready":true}\n');
const lines = createInterface({ input: process.stdin });
await once(lines, 'line');
lines.close();
await import('./durable-server-process.js');
