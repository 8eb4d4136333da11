// A resume server whose wall clock the test steps, as NTP or an operator would: `Date` (and so
// `Date.now()`, `new Date()`) is replaced by one offset by what stdin says; the monotonic clock
// (`performance.now()`) is left alone, as a real clock step leaves it.
// argv[2]: JSON options for createResumeServer (timeouts). argv[3], optional JSON:
// `redisUrl` (a RedisSessionStore instead of the memory store), `originOffsetMs` (the wall clock
// was this far off when the process started: `performance.timeOrigin` is shifted by it).
// Prints `{"port":N}` once listening.
// stdin: `step <ms>` adds to the offset and answers `{"stepped":<offset>}`; `sweeps <n>` answers
// `{"swept":n}` once the server's sweep has run n more times (it calls the store's expire()).
// stdout also carries `{"event":TYPE,"session":ID}` per session event.
import { createInterface } from 'node:readline';
import {
  createResumeServer,
  MemorySessionStore,
  RedisSessionStore,
  type SessionStore,
} from '@lifeline/node/server';

const setup = JSON.parse(process.argv[3] ?? '{}') as { redisUrl?: string; originOffsetMs?: number };
if (setup.originOffsetMs) {
  const origin = performance.timeOrigin + setup.originOffsetMs;
  Object.defineProperty(performance, 'timeOrigin', { value: origin });
}

const RealDate = Date;
let offset = 0;
class SteppedDate extends RealDate {
  constructor(...args: unknown[]) {
    if (args.length === 0) super(RealDate.now() + offset);
    else super(...(args as [number]));
  }
  static override now(): number {
    return RealDate.now() + offset;
  }
}
globalThis.Date = SteppedDate as DateConstructor;

const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

let sweepWaiters: (() => void)[] = [];
const store: SessionStore = setup.redisUrl
  ? new RedisSessionStore({ redis: setup.redisUrl })
  : new MemorySessionStore();
// The server's sweep calls expire(): counting the calls tells the test a sweep ran.
const expire = store.expire.bind(store);
store.expire = (now) => {
  const waiters = sweepWaiters;
  sweepWaiters = [];
  for (const waiter of waiters) waiter();
  return expire(now);
};

const server = createResumeServer({ ...JSON.parse(process.argv[2] ?? '{}'), store });
server.sessions$.subscribe((session) => {
  session.events$.subscribe((event) => print({ event: event.type, session: session.id }));
});
createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, value] = line.split(' ');
  if (command === 'step') {
    offset += Number(value);
    print({ stepped: offset });
  } else if (command === 'sweeps') {
    let left = Number(value);
    const wait = () => {
      if (left-- <= 0) print({ swept: Number(value) });
      else sweepWaiters.push(wait);
    };
    wait();
  }
});
const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
print({ port });
