// The page of `pnpm demo --web`, bundled with esbuild from the sources: one connection through
// @lifeline/browser (the resume protocol over the page's WebSocket) to the demo's resume server,
// behind a fault proxy. It streams both ways (client messages echoed back, plus the server's
// upstream events) and shows live what arrives, what is lost and what is repeated, while the demo
// kills the server every few seconds. No framework: a table of counters updated 5 times a second.
import {
  attach,
  browserRecoveryDefaults,
  browserTransport,
  type ConnectionState,
  type LinkData,
  type Transport,
} from '@lifeline/browser';
import { resumable } from '@lifeline/core/resume';

interface Config {
  /** The fault proxy in front of the demo server. */
  wsUrl: string;
  /** Client messages a second. */
  rate: number;
}

interface Status {
  kills: number;
  network: 'up' | 'cut' | 'offline';
  serverUp: boolean;
}

/**
 * Counts a numbered stream that must arrive in order: a number past the next expected one leaves
 * a gap (lost, unless it comes later: then it was reordered), one already seen is a duplicate.
 */
class OrderedCounter {
  next = 0;
  received = 0;
  duplicated = 0;
  reordered = 0;
  private readonly missing = new Set<number>();

  record(n: number): void {
    this.received++;
    if (n === this.next) this.next++;
    else if (n > this.next) {
      // Bounded: a gap of more than 100,000 is counted, not remembered.
      for (let k = this.next; k < n && this.missing.size < 100_000; k++) this.missing.add(k);
      this.next = n + 1;
    } else if (this.missing.delete(n)) this.reordered++;
    else this.duplicated++;
  }

  get lost(): number {
    return this.missing.size;
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const config = (await (await fetch('/api/config')).json()) as Config;
let status: Status = { kills: 0, network: 'up', serverUp: true };

const echoes = new OrderedCounter();
const ticks = new OrderedCounter();
// The demo server's upstream starts where the previous page left it: count from the first one seen.
let firstTick: number | undefined;
let sent = 0;
let refused = 0;
let sessionsLost = 0;
let unacknowledgedLost = 0;
let recoveries = 0;
let recoveriesSeen = 0;
const recoveryTimes: number[] = [];
let downSince: number | undefined;
const arrivals: number[] = []; // performance.now() of each message in the last second, as a ring
let state: ConnectionState = { status: 'connecting' } as ConnectionState;

const transport = resumable(browserTransport(config.wsUrl) as Transport<LinkData, Uint8Array>);
transport.session$.subscribe((event) => {
  if (event.type === 'lost') {
    sessionsLost++;
    unacknowledgedLost += event.unacknowledged.length;
  }
});
const conn = attach(transport, {
  ...browserRecoveryDefaults(),
  backoff: { initialDelayMs: 50, maxDelayMs: 1_000 },
  // Resume-protocol PINGs: a cut network (packets silently dropped) is noticed within 3 s.
  heartbeat: { intervalMs: 1_000, timeoutMs: 3_000 },
});
conn.state$.subscribe((next) => {
  state = next;
  if (next.status === 'recovering' && downSince === undefined) downSince = performance.now();
  if (next.status === 'open' && next.recoveries > recoveriesSeen) {
    recoveriesSeen = next.recoveries;
    recoveries = next.recoveries;
  }
});
const decoder = new TextDecoder();
conn.messages$.subscribe((data) => {
  const now = performance.now();
  if (downSince !== undefined) {
    recoveryTimes.push(now - downSince);
    if (recoveryTimes.length > 100) recoveryTimes.shift();
    downSince = undefined;
  }
  arrivals.push(now);
  if (arrivals.length > 20_000) arrivals.splice(0, arrivals.length - 20_000);
  const text = typeof data === 'string' ? data : decoder.decode(data as Uint8Array);
  if (text.startsWith('echo:')) echoes.record(Number(text.slice(5)));
  else if (text.startsWith('tick:')) {
    const tick = Number(text.slice(5));
    firstTick ??= tick;
    ticks.record(tick - firstTick);
  }
});

// Paced sender: sends wait in the connection's bounded queue while it recovers; a refusal is
// counted, never dropped silently.
setInterval(() => {
  for (let i = 0; i < config.rate / 20; i++) {
    conn.send(String(sent++)).catch(() => {
      refused++;
    });
  }
}, 50);

async function post(path: string): Promise<void> {
  status = (await (await fetch(path, { method: 'POST' })).json()) as Status;
  render();
}
$('kill').addEventListener('click', () => void post('/api/kill'));
$('cut').addEventListener('click', () => void post(status.network === 'cut' ? '/api/restore' : '/api/cut'));
$('offline').addEventListener(
  'click',
  () => void post(status.network === 'offline' ? '/api/restore' : '/api/offline'),
);
setInterval(async () => {
  status = (await (await fetch('/api/status')).json()) as Status;
}, 250);

const cell = (id: string, value: string | number) => {
  const element = $(id);
  const text = String(value);
  if (element.textContent !== text) element.textContent = text;
};
function render(): void {
  const now = performance.now();
  let i = arrivals.length;
  while (i > 0 && arrivals[i - 1]! > now - 1_000) i--;
  const perSecond = arrivals.length - i;
  const detail =
    state.status === 'recovering'
      ? `recovering, attempt ${state.attempt}`
      : state.status === 'open'
        ? 'open'
        : state.status;
  $('state').dataset.status = state.status;
  cell('state', detail);
  cell('rate', perSecond);
  cell('kills', status.kills);
  cell('recoveries', recoveries);
  const last = recoveryTimes.at(-1);
  cell('last-recovery', last === undefined ? '-' : `${last.toFixed(0)} ms`);
  cell('sent', sent);
  cell('echoed', echoes.received - echoes.duplicated);
  cell('ticks', ticks.received - ticks.duplicated);
  cell('lost', echoes.lost + ticks.lost + unacknowledgedLost);
  cell('duplicated', echoes.duplicated + ticks.duplicated);
  cell('reordered', echoes.reordered + ticks.reordered);
  cell('echoes-lost', echoes.lost);
  cell('ticks-lost', ticks.lost);
  cell('refused', refused);
  cell('sessions-lost', sessionsLost);
  cell('network', status.network);
  cell('server', status.serverUp ? 'up' : 'down');
  $('cut').textContent = status.network === 'cut' ? 'Restore network' : 'Cut the network';
  $('offline').textContent = status.network === 'offline' ? 'Go online' : 'Go offline';
}
setInterval(render, 200);
render();
