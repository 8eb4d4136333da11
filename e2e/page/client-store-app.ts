// The client-store test page (issue 15): a resumable HAWebSocket whose session lives in IndexedDB
// (`@lifeline/browser/client-store`), so a reload or a crashed tab resumes it. Query: `ws` (the
// resume server), `name` (the stored session), `ifLocked` ('wait' | 'fail').
//
// The server streams `s:k`; for each one the page's application answers `r:k` at once, from the
// message listener (so the answer is stored before the message's watermark: docs/protocol.md,
// "Answers before acknowledgements"), and first on each load a marker `w:<lastReceived>:
// <deliveredUpTo>:<pendingOutgoing>` saying what the store restored. The page also counts what it
// received across reloads in sessionStorage (kept by the tab through reloads, not through a crash).
import { HAWebSocket, resume } from '@lifeline/browser';
import { IndexedDbClientSessionStore } from '@lifeline/browser/client-store';

interface Tally {
  loads: number;
  highest: number;
  received: number;
  duplicated: number;
  repeatedInWindow: number;
  reordered: number;
  lost: number;
}

const params = new URLSearchParams(location.search);
const url = params.get('ws')!;
const name = params.get('name') ?? 'default';
const ifLocked = params.get('ifLocked') === 'fail' ? 'fail' : 'wait';
const tallyKey = `lifeline-tally:${name}`;
const tally: Tally = JSON.parse(
  sessionStorage.getItem(tallyKey) ??
    '{"loads":0,"highest":0,"received":0,"duplicated":0,"repeatedInWindow":0,"reordered":0,"lost":0}',
);
tally.loads++;
sessionStorage.setItem(tallyKey, JSON.stringify(tally));

export type ClientStoreState = typeof state;

const state = {
  opened: false,
  attachedAt: 0,
  sessionId: undefined as string | undefined,
  restored: undefined as unknown,
  receivedThisLoad: 0,
  error: undefined as string | undefined,
  closed: undefined as { code: number; reason: string } | undefined,
  tally,
};
(window as unknown as { clientStore: typeof state }).clientStore = state;

const store = new IndexedDbClientSessionStore({ name, ifLocked });
const socket = new HAWebSocket(url, {
  resume: resume({ store }),
  backoff: { initialDelayMs: 20, maxDelayMs: 250 },
});
/** What a JSON logger writes of the store and the session: neither may hold the token. */
(window as unknown as { clientStorePrinted: () => string }).clientStorePrinted = () =>
  JSON.stringify([store, socket.session]);
socket.binaryType = 'arraybuffer';

let expected = 0;
let window_ = 0;
let marked = false;
/** Once per load, before any answer: what the store gave back. */
function mark(): void {
  if (marked) return;
  marked = true;
  const restored = socket.session!.restored;
  state.restored = restored ?? null;
  expected = (restored?.lastReceived ?? 0) + 1;
  window_ = restored?.deliveredUpTo ?? 0;
  socket.send(`w:${restored?.lastReceived ?? 0}:${window_}:${restored?.pendingOutgoing ?? 0}`);
}

socket.addEventListener('open', () => {
  mark();
  state.opened = true;
  state.attachedAt = performance.now();
  state.sessionId = socket.session!.id;
});
socket.addEventListener('message', (event) => {
  mark();
  const k = Number(String(event.data).slice(2));
  const seq = socket.session!.lastReceived;
  socket.send(`r:${k}`);
  state.receivedThisLoad++;
  if (seq !== k || seq !== expected) {
    if (seq < expected) tally.duplicated++;
    else {
      tally.reordered++;
      tally.lost += seq - expected;
    }
  } else if (k <= tally.highest) {
    if (k <= window_) tally.repeatedInWindow++;
    else tally.duplicated++;
  } else {
    tally.received++;
  }
  if (seq >= expected) expected = seq + 1;
  if (k > tally.highest) tally.highest = k;
  sessionStorage.setItem(tallyKey, JSON.stringify(tally));
});
socket.addEventListener('error', (event) => {
  const error = (event as Event & { error?: { code?: string } }).error;
  state.error = error?.code ?? String(error);
});
socket.addEventListener('close', (event) => {
  state.closed = { code: event.code, reason: event.reason };
});
