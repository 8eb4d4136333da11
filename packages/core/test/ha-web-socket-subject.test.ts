/**
 * The contract of `haWebSocket()`: RxJS's `WebSocketSubject` interface over an HA connection.
 *
 * The first block runs the same cases against RxJS's own `webSocket()` and against
 * `haWebSocket()`, both driven by one fake WebSocket constructor: where nothing fails, the two
 * must be indistinguishable (subscription timing, buffering before open, multiplex messages,
 * completion and error paths). The second block is what only `haWebSocket()` does: recovery
 * beneath the subscribers, multiplex subscriptions restored on each recovered link, and loud
 * refusals. Each case records a timeline of what subscribers saw and what the server got, and
 * compares it whole.
 *
 * TestScheduler marbles fit where everything is synchronous once a link is open (multiplex
 * subscription timing, below). Opening and recovering do not fit: `attach` settles opens through
 * promises, which virtual time does not drive; there, timelines recorded in order serve instead.
 */
import {
  ClosedByUserError,
  type ConnectionState,
  LinkClosedError,
  type LinkData,
  QueueOverflowError,
} from '@lifeline/core';
import {
  defineHaWebSocket,
  type HAWebSocketRefusal,
  type HAWebSocketSubjectConfig,
  type WebSocketLike,
} from '@lifeline/core/internal';
import { createMemoryTransport, type MemoryTransport, waitFor } from '@lifeline/core/testing';
import { filter, firstValueFrom, type Observable, type Subscription } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { webSocket } from 'rxjs/webSocket';
import { afterEach, describe, expect, it } from 'vitest';
import { heldTransport } from './support.js';

/** A WebSocket the test drives: both `on*` handlers (RxJS) and `addEventListener` (Lifeline). */
class FakeWebSocket extends EventTarget {
  static instances: FakeWebSocket[] = [];
  readyState = 0;
  binaryType = 'blob';
  protocol = '';
  bufferedAmount = 0;
  readonly sent: LinkData[] = [];
  closedWith: { code?: number; reason?: string } | undefined;
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: Event) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  onclose: ((event: Event) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    super();
    FakeWebSocket.instances.push(this);
  }

  send(data: LinkData): void {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) return;
    this.closedWith = { code, reason };
    this.readyState = 2;
    // The closing handshake completes later, as on a real socket.
    queueMicrotask(() => this.finish(code ?? 1005, reason ?? '', true));
  }

  /** The server accepts the connection. */
  accept(): void {
    this.readyState = 1;
    this.fire('open', {});
  }

  /** A message from the server. */
  receive(data: LinkData): void {
    this.fire('message', { data });
  }

  /** The server closes with a closing handshake. */
  serverClose(code: number, reason = ''): void {
    this.finish(code, reason, true);
  }

  /** The connection drops: an error event, then an abnormal close. */
  drop(): void {
    this.fire('error', {});
    this.finish(1006, '', false);
  }

  private finish(code: number, reason: string, wasClean: boolean): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.fire('close', { code, reason, wasClean });
  }

  private fire(type: string, fields: object): void {
    const event = Object.assign(new Event(type), fields);
    const handler = (this as unknown as Record<string, ((event: Event) => void) | null>)[`on${type}`];
    handler?.call(this, event);
    this.dispatchEvent(event);
  }
}

const latest = () => FakeWebSocket.instances[FakeWebSocket.instances.length - 1]!;

/** Lets pending promise callbacks run (Lifeline opens and writes through promises). */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

const haWebSocket = defineHaWebSocket<WebSocketLike>({
  WebSocket: FakeWebSocket as unknown as new (url: string) => WebSocketLike,
});

const made: { unsubscribe(): void }[] = [];
afterEach(() => {
  for (const subject of made) subject.unsubscribe();
  made.length = 0;
  FakeWebSocket.instances = [];
});

/** The part of the subject interface both implementations share. */
interface SubjectLike<T> extends Observable<T> {
  next(value: T): void;
  error(error: unknown): void;
  complete(): void;
  unsubscribe(): void;
  multiplex(subMsg: () => T, unsubMsg: () => T, filter: (value: T) => boolean): Observable<T>;
}

type Make = (config: Partial<HAWebSocketSubjectConfig<any>>) => SubjectLike<any>;

const implementations: [string, Make][] = [
  [
    'rxjs webSocket()',
    (config) => {
      const subject = webSocket<any>({
        url: 'ws://fake',
        WebSocketCtor: FakeWebSocket as never,
        ...(config as object),
      });
      made.push(subject);
      return subject as unknown as SubjectLike<any>;
    },
  ],
  [
    'haWebSocket()',
    (config) => {
      const subject = haWebSocket<any>({ url: 'ws://fake', ...config });
      made.push(subject);
      return subject;
    },
  ],
];

/** A timeline of what one subscriber saw. */
function record<T>(source: Observable<T>, label: string, timeline: string[]): Subscription {
  return source.subscribe({
    next: (value) => timeline.push(`${label}:${JSON.stringify(value)}`),
    error: (error) => timeline.push(`${label}:error(${error?.constructor?.name})`),
    complete: () => timeline.push(`${label}:complete`),
  });
}

describe.each(implementations)('the WebSocketSubject contract: %s', (_name, make) => {
  it('opens no socket before the first subscribe, one for all subscribers, and sends what next() buffered before open, in order', async () => {
    const subject = make({ protocol: 'v1' });
    subject.next({ n: 1 });
    subject.next({ n: 2 });
    await flush();
    expect(FakeWebSocket.instances).toHaveLength(0);
    const timeline: string[] = [];
    record(subject, 'a', timeline);
    record(subject, 'b', timeline);
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(latest().url).toBe('ws://fake');
    expect(latest().protocols).toBe('v1');
    subject.next({ n: 3 });
    latest().accept();
    await flush();
    expect(latest().sent).toEqual(['{"n":1}', '{"n":2}', '{"n":3}']);
    subject.next({ n: 4 });
    await flush();
    expect(latest().sent).toEqual(['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}']);
    latest().receive('{"m":1}');
    expect(timeline).toEqual(['a:{"m":1}', 'b:{"m":1}']);
  });

  it('asObservable(), as on a Subject', async () => {
    const subject = make({}) as SubjectLike<unknown> & { asObservable(): Observable<unknown> };
    const timeline: string[] = [];
    record(subject.asObservable(), 'a', timeline);
    expect(FakeWebSocket.instances).toHaveLength(1);
    latest().accept();
    await flush();
    latest().receive('1');
    expect(timeline).toEqual(['a:1']);
  });

  it('calls openObserver on open, uses serializer and deserializer', async () => {
    const opened: string[] = [];
    const subject = make({
      openObserver: { next: (event: Event) => opened.push(event.type) },
      serializer: (value: string) => `<${value}>`,
      deserializer: (event: MessageEvent) => `[${event.data}]`,
    });
    const timeline: string[] = [];
    record(subject, 'a', timeline);
    subject.next('x');
    latest().accept();
    await flush();
    expect(opened).toEqual(['open']);
    expect(latest().sent).toEqual(['<x>']);
    latest().receive('y');
    expect(timeline).toEqual(['a:"[y]"']);
  });

  it('closes the socket when the last subscriber leaves, and opens a new one on the next subscribe', async () => {
    const subject = make({});
    const first = record(subject, 'a', []);
    const second = record(subject, 'b', []);
    latest().accept();
    await flush();
    first.unsubscribe();
    expect(latest().readyState).toBe(1);
    second.unsubscribe();
    expect(latest().readyState).toBeGreaterThanOrEqual(2);
    record(subject, 'c', []);
    expect(FakeWebSocket.instances).toHaveLength(2);
    expect(latest().readyState).toBe(0);
  });

  it('multiplex: sends the subscribe message on subscribe, filters, and sends the unsubscribe message on unsubscribe', async () => {
    const subject = make({});
    const timeline: string[] = [];
    record(subject, 'all', []);
    latest().accept();
    await flush();
    const a = record(
      subject.multiplex(
        () => ({ sub: 'a' }),
        () => ({ unsub: 'a' }),
        (m) => m.s === 'a',
      ),
      'a',
      timeline,
    );
    record(
      subject.multiplex(
        () => ({ sub: 'b' }),
        () => ({ unsub: 'b' }),
        (m) => m.s === 'b',
      ),
      'b',
      timeline,
    );
    await flush();
    latest().receive('{"s":"a","v":1}');
    latest().receive('{"s":"b","v":2}');
    a.unsubscribe();
    await flush();
    latest().receive('{"s":"a","v":3}');
    expect(latest().sent).toEqual(['{"sub":"a"}', '{"sub":"b"}', '{"unsub":"a"}']);
    expect(timeline).toEqual(['a:{"s":"a","v":1}', 'b:{"s":"b","v":2}']);
  });

  it('multiplex opened before the socket is open: its subscribe message goes first, once', async () => {
    const subject = make({});
    const timeline: string[] = [];
    record(
      subject.multiplex(
        () => 'sub',
        () => 'unsub',
        () => true,
      ),
      'm',
      timeline,
    );
    subject.next('v');
    latest().accept();
    await flush();
    expect(latest().sent).toEqual(['"sub"', '"v"']);
  });

  it('complete(): closingObserver is told, the socket closes, subscribers complete', async () => {
    const closing: string[] = [];
    const closes: number[] = [];
    const subject = make({
      closingObserver: { next: () => closing.push('closing') },
      closeObserver: { next: (event: { code: number }) => closes.push(event.code) },
    });
    const timeline: string[] = [];
    record(subject, 'a', timeline);
    latest().accept();
    await flush();
    subject.next('last');
    subject.complete();
    await flush();
    expect(closing).toEqual(['closing']);
    expect(latest().sent).toEqual(['"last"']);
    expect(latest().readyState).toBe(3);
    expect(closes).toHaveLength(1);
    expect(timeline).toEqual(['a:complete']);
  });

  it('error({ code, reason }) closes the socket with that code; error() without a code errors with a TypeError', async () => {
    const subject = make({});
    record(subject, 'a', []);
    latest().accept();
    await flush();
    subject.error({ code: 4000, reason: 'bye' });
    await flush();
    expect(latest().closedWith).toEqual({ code: 4000, reason: 'bye' });

    const other = make({});
    const timeline: string[] = [];
    record(other, 'b', timeline);
    latest().accept();
    await flush();
    other.error('no code');
    await flush();
    expect(timeline).toEqual(['b:error(TypeError)']);
  });

  it('a clean close by the server (1000) completes the subscribers, after closeObserver', async () => {
    const timeline: string[] = [];
    const subject = make({
      closeObserver: {
        next: (event: { code: number; wasClean: boolean }) =>
          timeline.push(`close:${event.code}:${event.wasClean}`),
      },
    });
    record(subject, 'a', timeline);
    latest().accept();
    await flush();
    latest().serverClose(1000, 'done');
    await flush();
    expect(timeline).toEqual(['close:1000:true', 'a:complete']);
  });

  it('a deserializer that throws errors the subscribers with its error', async () => {
    const subject = make({
      deserializer: () => {
        throw new RangeError('bad message');
      },
    });
    const timeline: string[] = [];
    record(subject, 'a', timeline);
    latest().accept();
    await flush();
    latest().receive('x');
    await flush();
    expect(timeline).toEqual(['a:error(RangeError)']);
  });
});

describe('where webSocket() and haWebSocket() differ: a dropped connection', () => {
  it('webSocket() errors its subscribers and forgets what next() gave it meanwhile; haWebSocket() recovers beneath them and sends it', async () => {
    const [, rx] = implementations[0]!;
    const rxTimeline: string[] = [];
    const rxSubject = rx({});
    record(rxSubject, 'rx', rxTimeline);
    latest().accept();
    latest().drop();
    rxSubject.next('meanwhile');
    expect(rxTimeline).toEqual(['rx:error(Event)']);
    expect(FakeWebSocket.instances).toHaveLength(1);

    FakeWebSocket.instances = [];
    const timeline: string[] = [];
    const subject = haWebSocket<string>({
      url: 'ws://fake',
      backoff: { initialDelayMs: 0, jitter: 'none' },
      minUptimeMs: 0,
    });
    made.push(subject);
    record(subject, 'ha', timeline);
    latest().accept();
    await flush();
    latest().drop();
    subject.next('meanwhile');
    await until(() => FakeWebSocket.instances.length === 2);
    latest().accept();
    await flush();
    latest().receive('"after"');
    expect(latest().sent).toEqual(['"meanwhile"']);
    expect(timeline).toEqual(['ha:"after"']);
  });
});

/** Waits (bounded) for a condition that promise callbacks and timers make true. */
const until = (condition: () => boolean, timeoutMs = 5_000) =>
  waitFor(condition, { timeoutMs, intervalMs: 1 });

/** haWebSocket over the in-memory transport, recovering at once. */
function overMemory<T = unknown>(config: Partial<HAWebSocketSubjectConfig<T>> = {}) {
  const memory: MemoryTransport<LinkData> = createMemoryTransport<LinkData>();
  const subject = haWebSocket<T>({
    url: 'ws://unused',
    backoff: { initialDelayMs: 0, jitter: 'none' },
    minUptimeMs: 0,
    wrapTransport: () => memory,
    ...config,
  });
  made.push(subject);
  const states: ConnectionState['status'][] = [];
  // Consecutive repeats (an open state updated with the recovery count) say nothing here.
  subject.state$.subscribe((state) => states.at(-1) !== state.status && states.push(state.status));
  return { subject, memory, states };
}

const waitForStatus = (state$: Observable<ConnectionState>, status: ConnectionState['status']) =>
  firstValueFrom(state$.pipe(filter((state) => state.status === status)));

describe('haWebSocket(): recovery beneath the subscribers', () => {
  it('marbles: each multiplexed stream gets its own messages from its subscribe to its unsubscribe, and tells the server both', async () => {
    type Tick = { t: string; v: number } | { sub: string } | { unsub: string };
    const { subject, memory } = overMemory<Tick>();
    record(subject, 'root', []);
    const peer = await memory.waitForPeer(1);
    await flush();
    new TestScheduler((actual, expected) => expect(actual).toEqual(expected)).run(
      ({ hot, expectObservable }) => {
        const values = {
          a: { t: 'x', v: 1 },
          b: { t: 'y', v: 2 },
          c: { t: 'x', v: 3 },
          d: { t: 'y', v: 4 },
          e: { t: 'x', v: 5 },
        };
        hot('-a-b-c-d-e', values).subscribe((message) => peer.send(JSON.stringify(message)));
        const stream = (t: string) =>
          subject.multiplex(
            () => ({ sub: t }),
            () => ({ unsub: t }),
            (message) => 't' in message && message.t === t,
          );
        expectObservable(stream('x'), '^-----!').toBe('-a---c', values);
        expectObservable(stream('y'), '--^').toBe('---b---d', values);
      },
    );
    expect(peer.received).toEqual(['{"sub":"x"}', '{"sub":"y"}', '{"unsub":"x"}']);
  });

  it('subscribers stay subscribed through a recovery; next() during it waits and is sent in order', async () => {
    const { subject, memory, states } = overMemory<string>();
    const timeline: string[] = [];
    record(subject, 'a', timeline);
    const peer1 = await memory.waitForPeer(1);
    subject.next('v1');
    await flush();
    peer1.send('"m1"');
    peer1.fail();
    subject.next('v2');
    subject.next('v3');
    const peer2 = await memory.waitForPeer(2);
    await flush();
    peer2.send('"m2"');
    expect(peer1.received).toEqual(['"v1"']);
    expect(peer2.received).toEqual(['"v2"', '"v3"']);
    expect(timeline).toEqual(['a:"m1"', 'a:"m2"']);
    expect(states).toEqual(['connecting', 'open', 'recovering', 'open']);
  });

  it('multiplex across recoveries: live streams re-subscribe first, in opening order, before queued values; an ended stream unsubscribes once', async () => {
    const { subject, memory } = overMemory<{ sub?: string; unsub?: string; v?: string }>();
    const stream = (name: string) =>
      subject.multiplex(
        () => ({ sub: name }),
        () => ({ unsub: name }),
        () => true,
      );
    record(subject, 'root', []);
    const peer1 = await memory.waitForPeer(1);
    const a = stream('a').subscribe();
    const b = stream('b').subscribe();
    subject.next({ v: '1' });
    b.unsubscribe();
    await flush();
    expect(peer1.received).toEqual(['{"sub":"a"}', '{"sub":"b"}', '{"v":"1"}', '{"unsub":"b"}']);

    memory.refuseOpens(1);
    peer1.fail();
    subject.next({ v: '2' });
    stream('c').subscribe();
    subject.next({ v: '3' });
    const peer2 = await memory.waitForPeer(2);
    await flush();
    expect(peer2.received).toEqual(['{"sub":"a"}', '{"sub":"c"}', '{"v":"2"}', '{"v":"3"}']);

    a.unsubscribe();
    await flush();
    peer2.fail();
    const peer3 = await memory.waitForPeer(3);
    await flush();
    expect(peer2.received.slice(4)).toEqual(['{"unsub":"a"}']);
    expect(peer3.received).toEqual(['{"sub":"c"}']);
  });

  it('multiplex messages in flight when the link broke: each live stream subscribes once on the new link, a stale unsubscribe is not rewritten', async () => {
    const held = heldTransport();
    const subject = haWebSocket<string>({
      url: 'ws://unused',
      backoff: { initialDelayMs: 0, jitter: 'none' },
      minUptimeMs: 0,
      wrapTransport: () => held.transport as never,
    });
    made.push(subject);
    record(subject, 'root', []);
    await until(() => held.peers.length === 1);
    await flush();
    const stream = (name: string) =>
      subject.multiplex(
        () => `sub ${name}`,
        () => `unsub ${name}`,
        () => true,
      );
    const a = stream('a').subscribe();
    stream('b').subscribe();
    await flush();
    held.peers[0]!.flush();
    stream('c').subscribe();
    a.unsubscribe();
    subject.next('v');
    await flush();
    // These three are still in the socket's buffer when the link breaks.
    expect(held.peers[0]!.held).toBe(3);
    held.peers[0]!.fail();
    await until(() => held.peers.length === 2);
    await flush();
    held.peers[1]!.flush();
    // b and c are live: each subscribed once, in opening order, before the value. a ended; the
    // server behind the new link never had it, so its unsubscribe is not rewritten.
    expect(held.peers[1]!.received).toEqual(['"sub b"', '"sub c"', '"v"']);
  });

  it('an irrecoverable close reaches subscribers as error with the original error', async () => {
    const { subject, memory } = overMemory<string>();
    let error: unknown;
    subject.subscribe({ error: (e) => (error = e) });
    const peer = await memory.waitForPeer(1);
    peer.close(4403, 'forbidden');
    await flush();
    expect(error).toBeInstanceOf(LinkClosedError);
    expect((error as LinkClosedError).closeCode).toBe(4403);
  });

  it('giving up reaches subscribers as error with the error that started the failure', async () => {
    const { subject, memory } = overMemory<string>({ maxAttemptsPerFailure: 2 });
    let error: unknown;
    subject.subscribe({ error: (e) => (error = e) });
    const peer = await memory.waitForPeer(1);
    memory.refuseOpens();
    const failure = new (await import('@lifeline/core')).LinkFailedError('the original', {
      syscallCode: 'ECONNRESET',
    });
    peer.fail(failure);
    await waitForStatus(subject.state$, 'closed');
    await flush();
    expect(error).toBe(failure);
  });

  it('a value the full queue cannot take is reported on refused$, and the subject lives on', async () => {
    const { subject, memory } = overMemory<string>({ queue: { maxMessages: 2 } });
    const refused: HAWebSocketRefusal<string>[] = [];
    subject.refused$.subscribe((refusal) => refused.push(refusal));
    const timeline: string[] = [];
    record(subject, 'a', timeline);
    const peer1 = await memory.waitForPeer(1);
    memory.refuseOpens(1);
    peer1.fail();
    subject.next('1');
    subject.next('2');
    subject.next('3');
    // Refused at the moment it was refused: before next() returned.
    expect(refused.map((r) => r.value)).toEqual(['3']);
    const peer2 = await memory.waitForPeer(2);
    await flush();
    expect(refused.map((r) => r.value)).toEqual(['3']);
    expect(refused[0]!.error).toBeInstanceOf(QueueOverflowError);
    expect(peer2.received).toEqual(['"1"', '"2"']);
    expect(timeline).toEqual([]);
  });

  it('without a refused$ listener, a refused value errors the subject with the refusal', async () => {
    const { subject, memory } = overMemory<string>({ queue: { maxMessages: 1 } });
    const timeline: string[] = [];
    record(subject, 'a', timeline);
    const peer1 = await memory.waitForPeer(1);
    memory.refuseOpens();
    peer1.fail();
    subject.next('1');
    subject.next('2');
    await flush();
    expect(timeline).toEqual(['a:error(QueueOverflowError)']);
  });

  it('before any connection exists, a value over the limit with nobody listening throws from next()', () => {
    const { subject } = overMemory<string>({ queue: { maxMessages: 1 } });
    subject.next('1');
    expect(() => subject.next('2')).toThrow(QueueOverflowError);
  });

  it('binary data given to next() before a connection exists is copied: reusing the buffer changes nothing sent', async () => {
    const { subject, memory } = overMemory<Uint8Array>({ serializer: (bytes) => bytes });
    const bytes = new Uint8Array([1, 2, 3]);
    subject.next(bytes);
    bytes[0] = 9;
    record(subject, 'a', []);
    const peer = await memory.waitForPeer(1);
    await flush();
    expect(peer.received.map((data) => [...(data as Uint8Array)])).toEqual([[1, 2, 3]]);
  });

  it('complete() while recovering sends what waits once a link is back, then completes', async () => {
    const { subject, memory } = overMemory<string>();
    const timeline: string[] = [];
    record(subject, 'a', timeline);
    const peer1 = await memory.waitForPeer(1);
    memory.refuseOpens(2);
    peer1.fail();
    subject.next('last');
    subject.complete();
    const peer2 = await memory.waitForPeer(2);
    await waitForStatus(subject.state$, 'closed');
    expect(peer2.received).toEqual(['"last"']);
    expect(timeline).toEqual(['a:complete']);
  });

  it('the last subscriber leaving while values wait closes at once; those values are refused with ClosedByUserError', async () => {
    const { subject, memory } = overMemory<string>();
    const refused: HAWebSocketRefusal<string>[] = [];
    subject.refused$.subscribe((refusal) => refused.push(refusal));
    const subscription = subject.subscribe();
    const peer1 = await memory.waitForPeer(1);
    memory.refuseOpens();
    peer1.fail();
    subject.next('waiting');
    subscription.unsubscribe();
    await flush();
    expect(refused.map((r) => [r.value, r.error instanceof ClosedByUserError])).toEqual([['waiting', true]]);
  });
});
