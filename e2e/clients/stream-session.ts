// Shared by the page, the Node client and the Deno client: one windowed, numbered stream through an
// HA connection against the stream server, counting both directions. Platform-free on purpose.
import { type HAConnection, type LinkData, SessionLostError } from '@lifeline/core';
import type { SessionEvent } from '@lifeline/core/resume';
import { SequenceCounter, type SequenceCounts } from '@lifeline/core/testing';
import type { Observable } from 'rxjs';

/** What a {@link StreamSession} counted. */
export interface StreamCounts {
  /** Client to server: sends made, and what came back as echoes. */
  readonly echoes: SequenceCounts;
  /**
   * Server to client: "tick:k" messages received, and those that broke the 0, 1, 2... order (per
   * link in plain mode, per session in resume mode).
   */
  readonly ticks: {
    readonly received: number;
    readonly gaps: number;
    /** The first few gaps, described, for the failure message. */
    readonly gapSamples: readonly string[];
    readonly perLink: readonly number[];
  };
  /** Links opened: the first plus one per recovery. */
  readonly links: number;
  /** Recovery attempts made (each `attempting` event). */
  readonly attempts: number;
  /** Resume mode only: what the session layer did with the sends. */
  readonly resume?: {
    readonly sessions: number;
    readonly resumes: number;
    /** Sends whose promise resolved: acknowledged by the server. */
    readonly acked: number;
    /** Sends whose promise rejected with a `SessionLostError`, by number, in order. */
    readonly rejected: readonly number[];
    /** The numbers the `lost` session events listed as unacknowledged, in order. */
    readonly reportedLost: readonly number[];
    /** Sends both acknowledged and reported lost (must be none). */
    readonly ackedAndLost: number;
    /** Sends neither acknowledged nor rejected yet. */
    readonly unsettled: number;
    /** Sends never echoed that no lost session reported either: acknowledged, yet their echo is missing. */
    readonly unechoedUnreported: number;
  };
}

/** Options of {@link StreamSession}. */
export interface StreamSessionOptions {
  /** Sends allowed ahead of the highest echo. @default 8 */
  window?: number;
  /** A stall longer than this (no echo while the window is full) fails the stream. @default 20_000 */
  stallMs?: number;
  /**
   * `'plain'`: ticks are numbered per link, and a recovered link loses what the dead one carried.
   * `'resume'`: the connection runs over `resumable()`; ticks are numbered per session, and
   * `session$` (the transport's session events) tells about new, resumed and lost sessions.
   * @default 'plain'
   */
  mode?: 'plain' | 'resume';
  session$?: Observable<SessionEvent>;
  /** Called after each echo, tick, settled send and link change: lets a driver wait without polling. */
  onChange?: (session: StreamSession) => void;
}

const PENDING = 0;
const ACKED = 1;
const REJECTED = 2;

export class StreamSession {
  readonly echoes = new SequenceCounter();
  sent = 0;
  links = 0;
  attempts = 0;
  sessions = 0;
  resumes = 0;
  private readonly outcomes: number[] = [];
  private acked = 0;
  private readonly rejected: number[] = [];
  private readonly reportedLost: number[] = [];
  private ticksPerLink: number[] = [];
  private ticksReceived = 0;
  private tickGaps = 0;
  private readonly gapSamples: string[] = [];
  /** `undefined`: the next tick sets the baseline (the session started on a link already ticking). */
  private expectedTick: number | undefined = 0;
  private highest = -1;
  private stopping = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private readonly window: number;
  private readonly stallMs: number;
  private readonly resume: boolean;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly conn: HAConnection<LinkData, LinkData>,
    private readonly options: StreamSessionOptions = {},
  ) {
    this.window = options.window ?? 8;
    this.stallMs = options.stallMs ?? 20_000;
    this.resume = options.mode === 'resume';
    if (conn.link !== undefined) {
      this.onLink(false);
      this.expectedTick = undefined;
      if (this.resume) this.sessions++;
    }
    const events = conn.events$.subscribe((event) => {
      if (event.type === 'link-open') this.onLink(event.recovered);
      else if (event.type === 'attempting') this.attempts++;
    });
    const messages = conn.messages$.subscribe((message) => this.onMessage(message));
    const sessions = options.session$?.subscribe((event) => this.onSession(event));
    this.unsubscribe = () => {
      events.unsubscribe();
      messages.unsubscribe();
      sessions?.unsubscribe();
    };
  }

  /** Starts sending in the background; `stop()` ends it. */
  start(): void {
    this.running ??= this.run().catch((error: Error) => {
      this.failure = error;
    });
  }

  /**
   * Stops sending, waits (bounded) for the echo of the last send, and in resume mode for every
   * send to be acknowledged or rejected; returns the counts.
   */
  async stop(): Promise<StreamCounts> {
    this.stopping = true;
    this.wake?.();
    await this.running;
    try {
      if (this.failure) throw this.failure;
      const last = this.sent - 1;
      while (last >= 0 && !this.echoes.has(last) && this.outcomes[last] !== REJECTED) {
        await this.progress(() => `last echo ${last} missing (highest ${this.highest})`);
      }
      while (this.resume && this.acked + this.rejected.length < this.sent) {
        await this.progress(() => `${this.sent - this.acked - this.rejected.length} sends never settled`);
      }
    } finally {
      this.unsubscribe();
    }
    return this.counts();
  }

  counts(): StreamCounts {
    let ackedAndLost = 0;
    for (const n of this.reportedLost) if (this.outcomes[n] === ACKED) ackedAndLost++;
    let unechoedUnreported = 0;
    if (this.resume) {
      const reported = new Set(this.reportedLost);
      for (let n = 0; n < this.sent; n++) if (!this.echoes.has(n) && !reported.has(n)) unechoedUnreported++;
    }
    return {
      echoes: this.echoes.counts(this.sent),
      ticks: {
        received: this.ticksReceived,
        gaps: this.tickGaps,
        gapSamples: [...this.gapSamples],
        perLink: [...this.ticksPerLink],
      },
      links: this.links,
      attempts: this.attempts,
      resume: this.resume
        ? {
            sessions: this.sessions,
            resumes: this.resumes,
            acked: this.acked,
            rejected: [...this.rejected],
            reportedLost: [...this.reportedLost],
            ackedAndLost,
            unsettled: this.sent - this.acked - this.rejected.length,
            unechoedUnreported,
          }
        : undefined,
    };
  }

  private async run(): Promise<void> {
    // Bounded in count as well as by the stall timeout: a stream never runs away.
    for (let n = 0; n < 10_000_000 && !this.stopping; n++) {
      while (n - this.highest > this.window && !this.stopping) {
        await this.progress(() => `no echo progress at ${n} (highest ${this.highest})`);
      }
      if (this.stopping) return;
      this.sent = n + 1;
      this.outcomes.push(PENDING);
      this.conn.send(String(n)).then(
        () => this.settle(n, ACKED),
        (error: unknown) => this.settle(n, error instanceof SessionLostError ? REJECTED : PENDING),
      );
    }
  }

  private settle(n: number, outcome: number): void {
    if (outcome === PENDING) return;
    this.outcomes[n] = outcome;
    if (outcome === ACKED) this.acked++;
    else this.rejected.push(n);
    if (this.resume) this.changed();
  }

  private progress(what: () => string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        reject(new Error(what()));
      }, this.stallMs);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private changed(): void {
    this.wake?.();
    this.options.onChange?.(this);
  }

  private onLink(recovered: boolean): void {
    this.links++;
    this.ticksPerLink.push(0);
    if (!this.resume) {
      this.expectedTick = 0;
      // Plain mode loses what a dead link had taken but not echoed: a recovered link opens the
      // window again, so the sender does not wait for echoes that can never come.
      if (recovered) this.highest = Math.max(this.highest, this.sent - 1);
    }
    this.changed();
  }

  private onSession(event: SessionEvent): void {
    switch (event.type) {
      case 'new':
        this.sessions++;
        this.expectedTick = 0;
        break;
      case 'resumed':
        this.resumes++;
        break;
      case 'lost':
        for (const message of event.unacknowledged) {
          this.reportedLost.push(
            Number(typeof message.data === 'string' ? message.data : new TextDecoder().decode(message.data)),
          );
        }
        // The lost session's sends will never be echoed: the window opens past them.
        this.highest = Math.max(this.highest, this.sent - 1);
        break;
    }
    this.changed();
  }

  private onMessage(message: LinkData): void {
    const text = typeof message === 'string' ? message : new TextDecoder().decode(message as ArrayBuffer);
    if (text.startsWith('tick:')) {
      const tick = Number(text.slice(5));
      this.ticksReceived++;
      this.ticksPerLink[this.ticksPerLink.length - 1]!++;
      if (this.expectedTick !== undefined && tick !== this.expectedTick) {
        this.tickGaps++;
        if (this.gapSamples.length < 5)
          this.gapSamples.push(`link ${this.links}: expected ${this.expectedTick}, got ${tick}`);
      }
      this.expectedTick = tick + 1;
      this.options.onChange?.(this);
      return;
    }
    if (!text.startsWith('echo:')) return;
    const n = Number(text.slice(5));
    this.echoes.record(n);
    if (n > this.highest) this.highest = n;
    this.changed();
  }
}
