// A RedisSessionStore made from a URL whose Redis does not answer (the port in argv[2] refuses):
// one operation, then close(). Prints {"load":{name,message},"closedInMs":n} and must then exit
// on its own: nothing of the store's ioredis client may keep the process alive.
import { RedisSessionStore } from '@lifeline/node/server';

const store = new RedisSessionStore({
  redis: `redis://127.0.0.1:${process.argv[2]}`,
  operationTimeoutMs: 1_000,
});
const load = await store.load('x').then(
  () => 'loaded',
  (error: Error) => ({ name: error.name, message: error.message }),
);
const started = performance.now();
await store.close();
process.stdout.write(`${JSON.stringify({ load, closedInMs: Math.round(performance.now() - started) })}\n`);
