// The end-to-end page: one HAWebSocket (and haFetch) driven by the Playwright tests through
// `window.lifeline`, showing the connection's state timeline and counters as it goes.
import {
  type ConnectionState,
  HAEventSource,
  HAWebSocket,
  type HAWebSocketInstance,
  type HAWebSocketOptions,
  haFetch,
  type ResumeSession,
  resume,
} from '@lifeline/browser';
import { type StreamCounts, StreamSession, type StreamSessionOptions } from '../clients/stream-session.js';

interface TimelineEntry {
  /** ms since the page loaded. */
  readonly t: number;
  readonly status: string;
  readonly detail: string;
}

interface PageCounters {
  status: ConnectionState['status'] | 'idle';
  mode: 'plain' | 'resume';
  sessionsLost: number;
  linkOpens: number;
  recoveries: number;
  attempts: number;
  linkDowns: number;
  messages: number;
  online: boolean;
  /** Attempts made while the page was offline (navigator.onLine false). */
  attemptsWhileOffline: number;
  lastError: string;
  /** Resume mode: the socket's session handle, as read at the snapshot. */
  session?: { id: string | undefined; state: ResumeSession['state']; resumes: number; sessionsLost: number };
  stream?: StreamCounts;
  fetch?: { bytes: number; sha256: string; breaks: number; resumes: number; ms: number };
}

const timeline: TimelineEntry[] = [];
const counters: PageCounters = {
  status: 'idle',
  mode: 'plain',
  sessionsLost: 0,
  linkOpens: 0,
  recoveries: 0,
  attempts: 0,
  linkDowns: 0,
  messages: 0,
  online: navigator.onLine,
  attemptsWhileOffline: 0,
  lastError: '',
};
let socket: HAWebSocketInstance | undefined;
let session: StreamSession | undefined;

function note(status: string, detail = ''): void {
  timeline.push({ t: Math.round(performance.now()), status, detail });
  render();
  // Counters move with every message; redraw a few times a second rather than per message.
  setInterval(render, 200);
}

function describe(state: ConnectionState): string {
  switch (state.status) {
    case 'recovering':
      return `attempt ${state.attempt}/${state.maxAttempts}, wait ${Math.round(state.delayMs)} ms, ${messageOf(state.lastError)}`;
    case 'open':
    case 'suspended':
      return `recoveries ${state.recoveries}`;
    case 'closed':
      return `${state.reason}${state.error ? `: ${messageOf(state.error)}` : ''}`;
    default:
      return '';
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error ?? '');
}

addEventListener('online', () => {
  counters.online = true;
  note('online', 'navigator.onLine = true');
});
addEventListener('offline', () => {
  counters.online = false;
  note('offline', 'navigator.onLine = false');
});

const api = {
  /**
   * Opens the HAWebSocket, in resume mode with `resume: resume()` (exactly-once both ways);
   * resolves once it is open.
   */
  connect(
    url: string,
    options: HAWebSocketOptions<false> = {},
    mode: 'plain' | 'resume' = 'plain',
  ): Promise<void> {
    const target = document.getElementById('target')!;
    target.textContent = `target: ${url} (${mode} mode)`;
    counters.mode = mode;
    const ws = new HAWebSocket(url, { ...options, resume: mode === 'resume' && resume() });
    // With resume on, the session handle is there from the constructor on.
    ws.session?.events$.subscribe((event) => {
      if (event.type === 'lost') {
        counters.sessionsLost++;
        note('session-lost', `${event.reason}: ${event.unacknowledged.length} unacknowledged`);
      } else if (event.type === 'new') note('session', `new ${event.sessionId.slice(0, 8)}`);
      else if (event.type === 'resumed') note('session', `resumed (${event.resumes})`);
    });
    socket = ws;
    ws.state$.subscribe((state) => {
      counters.status = state.status;
      if (state.status === 'recovering') counters.lastError = messageOf(state.lastError);
      note(state.status, describe(state));
    });
    ws.connection.events$.subscribe((event) => {
      if (event.type === 'link-open') {
        counters.linkOpens++;
        if (event.recovered) counters.recoveries++;
      } else if (event.type === 'link-down') counters.linkDowns++;
      else if (event.type === 'attempting') {
        counters.attempts++;
        if (!navigator.onLine) counters.attemptsWhileOffline++;
        note('attempt', `attempt ${event.attempt}${navigator.onLine ? '' : ' (OFFLINE)'}`);
      }
      render();
      // Counters move with every message; redraw a few times a second rather than per message.
      setInterval(render, 200);
    });
    ws.addEventListener('message', () => {
      counters.messages++;
    });
    return new Promise((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('close', () => reject(new Error(`closed before opening: ${counters.lastError}`)), {
        once: true,
      });
    });
  },

  startStream(options: Pick<StreamSessionOptions, 'window' | 'stallMs'> = {}): void {
    if (!socket) throw new Error('connect() first');
    session = new StreamSession(socket.connection, {
      ...options,
      mode: socket.session ? 'resume' : 'plain',
      session$: socket.session?.events$,
    });
    session.start();
    note('stream', `started, window ${options.window ?? 8}`);
  },

  async stopStream(): Promise<StreamCounts> {
    if (!session) throw new Error('startStream() first');
    const counts = await session.stop();
    counters.stream = counts;
    note(
      'stream',
      `stopped: sent ${counts.echoes.sent}, lost ${counts.echoes.lost}, duplicated ${counts.echoes.duplicated}`,
    );
    return counts;
  },

  /** Downloads `url` with haFetch and hashes the body in the page. */
  async fetchAndHash(url: string): Promise<NonNullable<PageCounters['fetch']>> {
    const started = performance.now();
    note('fetch', url);
    const response = await haFetch(url, {
      lifeline: {
        backoff: { initialDelayMs: 20, maxDelayMs: 200 },
        maxAttemptsPerFailure: 20,
        onEvent: (event) => {
          if (event.type === 'break') note('fetch-break', `after ${event.bytesDelivered} bytes`);
          else if (event.type === 'resumed') note('fetch-resumed', `resume ${event.resumes}`);
        },
      },
    });
    const body = await response.arrayBuffer();
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
    const sha256 = [...digest].map((byte) => byte.toString(16).padStart(2, '0')).join('');
    counters.fetch = {
      bytes: body.byteLength,
      sha256,
      breaks: response.lifeline.breaks,
      resumes: response.lifeline.resumes,
      ms: Math.round(performance.now() - started),
    };
    note('fetch', `done: ${body.byteLength} bytes, sha256 ${sha256.slice(0, 16)}...`);
    return counters.fetch;
  },

  /**
   * Reads an event stream with the browser's native `EventSource` or with `HAEventSource` until
   * it closes (or `timeoutMs`): every `message` and `tick` event, how many opens and errors.
   * With `tokens`, HAEventSource sends `Authorization: Bearer page-<n>`, fresh on each request.
   */
  readEventStream(
    url: string,
    kind: 'native' | 'ha',
    timeoutMs = 60_000,
    tokens = false,
  ): Promise<EventStreamRecord> {
    note('event-source', `${kind} ${url}`);
    let token = 0;
    const source: EventSource | InstanceType<typeof HAEventSource> =
      kind === 'native'
        ? new EventSource(url)
        : new HAEventSource(url, {
            backoff: { initialDelayMs: 20, maxDelayMs: 200 },
            ...(tokens ? { headers: async () => ({ authorization: `Bearer page-${++token}` }) } : {}),
          });
    const record: EventStreamRecord = { events: [], opens: 0, errors: 0, closedWith: '' };
    const onEvent = (event: Event) => {
      const message = event as MessageEvent<string>;
      record.events.push({
        type: message.type,
        data: message.data,
        lastEventId: message.lastEventId,
        origin: message.origin,
      });
    };
    source.addEventListener('message', onEvent);
    source.addEventListener('tick', onEvent);
    source.addEventListener('open', () => record.opens++);
    return new Promise<EventStreamRecord>((resolve) => {
      const timer = setTimeout(() => {
        source.close();
        record.closedWith = 'timeout';
        resolve(record);
      }, timeoutMs);
      source.addEventListener('error', (event: Event) => {
        record.errors++;
        if (source.readyState !== source.CLOSED) return;
        clearTimeout(timer);
        const error = (event as Event & { error?: { status?: number; message?: string } }).error;
        record.closedWith = error === undefined ? 'closed' : String(error.status ?? error.message);
        note('event-source', `${kind} closed after ${record.events.length} events (${record.closedWith})`);
        resolve(record);
      });
    });
  },

  snapshot() {
    const handle = socket?.session;
    const sessionNow = handle && {
      id: handle.id,
      state: handle.state,
      resumes: handle.stats.resumes,
      sessionsLost: handle.stats.sessionsLost,
    };
    return JSON.parse(
      JSON.stringify({
        ...counters,
        session: sessionNow,
        stream: session?.counts() ?? counters.stream,
        timeline,
      }),
    ) as PageCounters & { timeline: TimelineEntry[] };
  },

  close(): void {
    socket?.close();
  },
};

/** What {@link api.readEventStream} saw. */
interface EventStreamRecord {
  events: { type: string; data: string; lastEventId: string; origin: string }[];
  opens: number;
  errors: number;
  /** 'closed' (native: no reason given), a status such as '204' or '503', an error message, or 'timeout'. */
  closedWith: string;
}

declare global {
  interface Window {
    lifeline: typeof api;
  }
}
window.lifeline = api;

let renderQueued = false;
function render(): void {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    const status = document.getElementById('status')!;
    status.textContent = counters.status;
    status.dataset.status = counters.status;
    const stream = session?.counts() ?? counters.stream;
    const rows: [string, string | number][] = [
      ['status', counters.status],
      ['mode', counters.mode],
      ['online', String(counters.online)],
      ['links opened', counters.linkOpens],
      ['recoveries', counters.recoveries],
      ['recovery attempts', counters.attempts],
      ['attempts while offline', counters.attemptsWhileOffline],
      ['links down', counters.linkDowns],
      ['messages received', counters.messages],
    ];
    if (stream) {
      rows.push(
        ['sent', stream.echoes.sent],
        ['echoes received', stream.echoes.received],
        ['lost', stream.echoes.lost],
        ['duplicated', stream.echoes.duplicated],
        ['out of order', stream.echoes.reordered],
        ['ticks received', stream.ticks.received],
        ['tick gaps', stream.ticks.gaps],
      );
      if (stream.resume) {
        rows.push(
          ['sessions', stream.resume.sessions],
          ['resumes', stream.resume.resumes],
          ['acknowledged', stream.resume.acked],
          ['sessions lost', counters.sessionsLost],
          ['reported unacknowledged', stream.resume.reportedLost.length],
          ['rejected (session lost)', stream.resume.rejected.length],
        );
      }
    }
    if (counters.fetch) {
      rows.push(
        ['fetch bytes', counters.fetch.bytes],
        ['fetch breaks', counters.fetch.breaks],
        ['fetch resumes', counters.fetch.resumes],
        ['fetch sha256', `${counters.fetch.sha256.slice(0, 16)}...`],
      );
    }
    rows.push(['last error', counters.lastError || '-']);
    document.getElementById('counters')!.innerHTML = rows
      .map(([name, value]) => `<tr><th>${name}</th><td class="n">${escapeHtml(String(value))}</td></tr>`)
      .join('');
    // Newest first: the latest transitions stay in view.
    document.getElementById('timeline')!.innerHTML = timeline
      .slice(-40)
      .reverse()
      .map(
        (entry) =>
          `<li class="${entry.status === 'open' || entry.status === 'recovering' || entry.status === 'closed' ? entry.status : 'note'}">` +
          `${String(entry.t).padStart(7)} ms  ${entry.status.padEnd(11)} ${escapeHtml(entry.detail)}</li>`,
      )
      .join('');
  });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

render();
// Counters move with every message; redraw a few times a second rather than per message.
setInterval(render, 200);
