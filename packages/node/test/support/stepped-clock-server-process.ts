// A resume server whose wall clock the test steps, as NTP or an operator would: `Date` (and so
// `Date.now()`, `new Date()`) is replaced by one offset by what stdin says; the monotonic clock
// (`performance.now()`) is left alone, as a real clock step leaves it.
// argv[2]: JSON options for createResumeServer (timeouts). Prints `{"port":N}` once listening.
// stdin: `step <ms>` adds to the offset and answers `{"stepped":<offset>}`; `sweeps <n>` answers
// `{"swept":n}` once the server's sweep has run n more times (it calls the store's expire()).
// stdout also carries `{"event":TYPE,"session":ID}` per session event.
import { createInterface } from 'node:readline';
import { createResumeServer, MemorySessionStore } from '@lifeline/node/server';

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
class SweepCountingStore extends MemorySessionStore {
  override async expire(now: number): Promise<string[]> {
    const waiters = sweepWaiters;
    sweepWaiters = [];
    for (const waiter of waiters) waiter();
    return super.expire(now);
  }
}

const server = createResumeServer({
  ...JSON.parse(process.argv[2] ?? '{}'),
  store: new SweepCountingStore(),
});
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
