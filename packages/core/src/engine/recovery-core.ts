import { Observable, type SchedulerLike, type Subscriber, type Subscription } from 'rxjs';
import type { BackoffOptions } from '../policy/backoff-delay.js';
import type { ErrorClassifier } from '../policy/classify.js';
import { decideRetry, type GiveUpReason } from '../policy/retry-decision.js';
import type { RetryAfterOptions } from '../policy/retry-hint.js';
import { monotonicNow, monotonicScheduler } from './clock.js';
import { checkRecoveryOptions } from './options.js';

/**
 * The recovery policy shared by `attach`, `recoverWith`, `backoff` and `haFetch`. Every value is
 * checked where it is passed (the constructor or factory): NaN, a negative, a duration of 2^31 ms
 * or more, or a value of the wrong type throws an `InvalidOptionError` naming the option
 * (`backoff.maxDelayMs`) and its range.
 */
export interface RecoveryOptions {
  /**
   * Attempts for one failure (libha `HA_RECOVERY_ICOUNT`). A failure ends, and this count starts
   * again, when a recovered link makes progress (carries traffic from the peer: a message, a
   * pong, a resumed session, body bytes) or stays up for `minUptimeMs`. A link that opens and
   * dies without either is one more attempt of the same failure. With the default backoff, 120
   * attempts last 15 to 20 minutes of continuous outage when connects are refused at once, up to
   * about 50 when each waits out a connect timeout (docs/concepts.md, "Budgets"). An integer ≥ 0,
   * or Infinity (never give up).
   * @default 120
   */
  maxAttemptsPerFailure?: number;
  /**
   * Failures recovered from over the connection's life (libha `HA_RECOVERY_ACOUNT`). Each failure
   * that starts a recovery uses one, whether or not its attempts succeed. An integer ≥ 0 (0: the
   * first failure closes the connection), or Infinity.
   * @default Infinity
   */
  maxRecoveries?: number;
  /** The wait before each attempt. @default `DEFAULT_BACKOFF` */
  backoff?: BackoffOptions;
  /**
   * How long a recovered link that carries no traffic must stay up before the failure counts as
   * over (progress ends it at once). A link that opens and dies inside this window without
   * progress keeps spending the same failure's budget. `0`: any open ends the failure. In ms, from
   * 0 to 2^31 - 1.
   * @default 2_000
   */
  minUptimeMs?: number;
  /**
   * Retry hints carried by failures (an HTTP `Retry-After`, an SSE `retry:` field, a server's
   * going-away hint): the next attempt waits at least that long, capped. `false` ignores them.
   * @default { enabled: true, maxDelayMs: 120_000 }
   */
  retryAfter?: RetryAfterOptions | false;
  /** Overrides the recoverable/irrecoverable classification; return `undefined` to defer to the default. */
  isRecoverable?: ErrorClassifier;
  /** The user's last word before each attempt; return false to give up (the original error propagates). */
  shouldRecover?: (error: unknown, attempt: number) => boolean;
  /** Each emission cuts the current backoff wait short (e.g. "back online", "tab visible"). */
  trigger?: Observable<unknown>;
  /**
   * Whether the network is usable. While the last value is `false`, no attempt is made and no
   * budget is spent; the attempt starts as soon as it turns `true`.
   * @default always online
   */
  online?: Observable<boolean>;
  /** Drives every timer, so marble tests and fake timers control time. @default monotonicScheduler (`asyncScheduler`'s timers) */
  scheduler?: SchedulerLike;
  /** Source of randomness for jitter, in [0, 1). @default Math.random */
  random?: () => number;
}

/**
 * Raised inside a recovery pipeline when the recovery function gives up: recovery ends and the
 * original failure reaches the caller.
 */
export class RecoveryDeclined {
  readonly declined = true;
}

/** Named defaults of {@link RecoveryOptions}. */
export const DEFAULT_MAX_ATTEMPTS_PER_FAILURE = 120;
export const DEFAULT_MAX_RECOVERIES = Infinity;
export const DEFAULT_MIN_UPTIME_MS = 2_000;

/** What the recovery core reports as it works. */
export type RecoveryEvent =
  | {
      readonly type: 'recovering';
      /** The attempt about to be made, 1-based. */
      readonly attempt: number;
      readonly maxAttempts: number;
      readonly delayMs: number;
      /** The error that started this failure. */
      readonly error: unknown;
      /** The error of the previous failed attempt, or the failure itself before the first attempt. */
      readonly lastError: unknown;
      readonly recoveriesLeft: number;
    }
  | { readonly type: 'attempting'; readonly attempt: number }
  | { readonly type: 'up'; readonly recovering: boolean }
  | { readonly type: 'recovered'; readonly recoveries: number; readonly attempts: number }
  | { readonly type: 'gave-up'; readonly reason: GiveUpReason; readonly error: unknown };

/**
 * Who hears a {@link RecoveryCore}'s events as a method (`attach`'s connection): no closure per
 * core, which lives as long as its connection. Not marked internal: the core's constructor names
 * it, and a stripped type there breaks every consumer's type check of the published `.d.ts`.
 */
export interface RecoveryListener {
  recoveryEvent_(event: RecoveryEvent): void;
}

/**
 * The one recovery state machine: it counts attempts and recoveries against their budgets, asks
 * {@link decideRetry}, and waits out the backoff. `attach`, `recoverWith`, `backoff` and `haFetch`
 * are thin wrappers around it.
 */
export class RecoveryCore {
  private failureError_: unknown;
  private inFailure_ = false;
  private attemptsMade_ = 0;
  private recoveriesUsed_ = 0;
  private recovered_ = 0;
  private suspendedFlag_ = false;
  private closedFlag_ = false;
  private isUp_ = false;
  /** When the current failure began, on {@link now}'s clock. */
  private failureStartedAt_ = 0;
  private uptimeTimer_: Subscription | undefined;
  /**
   * Ends the wait under way (one at a time: each failure is waited out before the next), on
   * suspend() or close(). A field rather than a Subject: every connection keeps its core.
   */
  private interruptWait_: (() => void) | undefined;
  private readonly scheduler: SchedulerLike;
  readonly maxAttemptsPerFailure: number;
  readonly maxRecoveries: number;
  private readonly listener_: RecoveryListener;

  /** @param listener hears each {@link RecoveryEvent}, as its method: `{ recoveryEvent_: onEvent }`. */
  constructor(
    private readonly options: RecoveryOptions,
    listener: RecoveryListener,
  ) {
    checkRecoveryOptions(options);
    this.listener_ = listener;
    this.scheduler = options.scheduler ?? monotonicScheduler;
    this.maxAttemptsPerFailure = options.maxAttemptsPerFailure ?? DEFAULT_MAX_ATTEMPTS_PER_FAILURE;
    this.maxRecoveries = options.maxRecoveries ?? DEFAULT_MAX_RECOVERIES;
  }

  /** The error that started the failure being recovered from, if one is. */
  get failure(): unknown {
    return this.failureError_;
  }
  get recovering(): boolean {
    return this.inFailure_;
  }
  /** The current attempt number (1-based) while recovering; 0 otherwise. */
  get attempt(): number {
    return this.attemptsMade_;
  }
  get recoveriesLeft(): number {
    return Math.max(0, this.maxRecoveries - this.recoveriesUsed_);
  }
  /** Successful recoveries over the connection's life. */
  get recoveries(): number {
    return this.recovered_;
  }
  get suspended(): boolean {
    return this.suspendedFlag_;
  }
  get up(): boolean {
    return this.isUp_;
  }

  /**
   * Milliseconds on a monotonic clock: the injected scheduler's (so marble tests and fake timers
   * drive it), else {@link monotonicNow}, never the wall clock, which can step.
   */
  private now(): number {
    return this.options.scheduler ? this.options.scheduler.now() : monotonicNow();
  }

  /**
   * The resource that is up carried traffic from its peer (a message, a pong, a resumed session,
   * body bytes): the failure, if one is being recovered from, is over. The next failure starts
   * with a fresh per-failure budget and the initial backoff. Cheap when there is nothing to end,
   * so callers may report every message.
   */
  markProgress(): void {
    if (!this.inFailure_ || !this.isUp_) return;
    this.uptimeTimer_?.unsubscribe();
    this.uptimeTimer_ = undefined;
    this.endFailure_();
  }

  /** The resource (link, subscription) is up. Starts the `minUptime` clock if it is a recovery. */
  markUp(): void {
    // After close() (possibly from a listener of this very link's opening) no window may start.
    if (this.isUp_ || this.closedFlag_) return;
    this.isUp_ = true;
    this.listener_.recoveryEvent_({ type: 'up', recovering: this.inFailure_ });
    if (!this.inFailure_) return;
    const minUptime = this.options.minUptimeMs ?? DEFAULT_MIN_UPTIME_MS;
    if (minUptime <= 0) {
      this.endFailure_();
      return;
    }
    this.uptimeTimer_ = this.scheduler.schedule(() => {
      this.uptimeTimer_ = undefined;
      this.endFailure_();
    }, minUptime);
  }

  /**
   * The resource failed with `error`. Returns a notifier that emits once when the next attempt
   * should start, or errors with the error that must reach the caller when recovery gives up.
   */
  fail(error: unknown): Observable<void> {
    // Hand-written rather than composed from rxjs operators: this sits on every connection's
    // path, and the operators it would take (race, concat, merge, timer...) are most of the rxjs
    // a browser bundle of HAWebSocket would otherwise carry.
    return new Observable<void>((subscriber) => {
      this.isUp_ = false;
      this.uptimeTimer_?.unsubscribe();
      this.uptimeTimer_ = undefined;
      const newFailure = !this.inFailure_;
      if (error instanceof RecoveryDeclined) {
        subscriber.error(this.giveUp_('declined', this.failureError_));
        return;
      }
      const decision = decideRetry({
        error,
        closed: this.closedFlag_,
        suspended: this.suspendedFlag_,
        attemptsMade: newFailure ? 0 : this.attemptsMade_,
        maxAttemptsPerFailure: this.maxAttemptsPerFailure,
        recoveriesUsed: this.recoveriesUsed_,
        maxRecoveries: this.maxRecoveries,
        newFailure,
        classify: this.options.isRecoverable,
        shouldRecover: this.options.shouldRecover,
        backoff: this.options.backoff,
        elapsedMs: newFailure ? 0 : this.now() - this.failureStartedAt_,
        random: this.options.random,
        retryAfter: this.options.retryAfter,
      });
      if (decision.action === 'give-up') {
        // libha's contract: when recovery gives up, the caller sees the ORIGINAL failure. An
        // irrecoverable error met during an attempt (a 401 on reopen) is new information, so it wins.
        const propagated = newFailure || decision.reason === 'irrecoverable' ? error : this.failureError_;
        subscriber.error(this.giveUp_(decision.reason, propagated));
        return;
      }
      if (newFailure) {
        this.inFailure_ = true;
        this.failureStartedAt_ = this.now();
        this.failureError_ = error;
        this.recoveriesUsed_++;
      }
      this.attemptsMade_ = decision.attempt;
      this.listener_.recoveryEvent_({
        type: 'recovering',
        attempt: decision.attempt,
        maxAttempts: this.maxAttemptsPerFailure,
        delayMs: decision.delayMs,
        error: this.failureError_,
        lastError: error,
        recoveriesLeft: this.recoveriesLeft,
      });
      // A listener of that event may have closed or suspended us; the wait would miss the
      // interruption (nobody was subscribed to it yet), so honour it here.
      if (this.closedFlag_ || this.suspendedFlag_) {
        subscriber.error(this.giveUp_(this.closedFlag_ ? 'closed' : 'suspended', this.failureError_));
        return;
      }
      return this.wait(decision.delayMs, subscriber);
    });
  }

  /** While suspended, failures propagate as on a plain connection; a recovery under way gives up. */
  suspend(): void {
    this.suspendedFlag_ = true;
    this.interruptWait_?.();
  }
  enable(): void {
    this.suspendedFlag_ = false;
  }
  /**
   * Restores both budgets (libha `HA_RECOVERY_RESET_ICOUNT` and `RESET_ACOUNT`). A failure under
   * way keeps one recovery charged, and an attempt being waited for or made becomes attempt 1 of a
   * fresh budget (attempt numbers stay 1-based for the recovery function and the state).
   */
  resetCounts(): void {
    this.recoveriesUsed_ = this.inFailure_ ? 1 : 0;
    this.attemptsMade_ = this.inFailure_ && !this.isUp_ ? 1 : 0;
    // The backoff starts over too: it grows with the time the failure has lasted.
    if (this.inFailure_) this.failureStartedAt_ = this.now();
  }
  /** No more recovery: a wait under way gives up. */
  close(): void {
    this.closedFlag_ = true;
    this.uptimeTimer_?.unsubscribe();
    this.uptimeTimer_ = undefined;
    this.interruptWait_?.();
  }

  private endFailure_(): void {
    const attempts = this.attemptsMade_;
    this.inFailure_ = false;
    this.failureError_ = undefined;
    this.attemptsMade_ = 0;
    this.recovered_++;
    this.listener_.recoveryEvent_({ type: 'recovered', recoveries: this.recovered_, attempts });
  }

  /** Ends the failure and returns the error the caller must see. */
  private giveUp_(reason: GiveUpReason, error: unknown): unknown {
    this.inFailure_ = false;
    this.failureError_ = undefined;
    this.attemptsMade_ = 0;
    this.listener_.recoveryEvent_({ type: 'gave-up', reason, error });
    return error;
  }

  /**
   * Waits out the backoff (cut short by `trigger`), then for `online` to be true, then emits.
   * A suspend() or close() during the wait ends the recovery with the original error.
   */
  private wait(delayMs: number, subscriber: Subscriber<void>): () => void {
    let done = false;
    let backoffOver = false;
    let timer: Subscription | undefined;
    let trigger: Subscription | undefined;
    let online: Subscription | undefined;
    const teardown = () => {
      done = true;
      timer?.unsubscribe();
      trigger?.unsubscribe();
      online?.unsubscribe();
      if (this.interruptWait_ === interrupt) this.interruptWait_ = undefined;
    };
    const ready = () => {
      if (done) return;
      teardown();
      // Read at the end of the wait: resetCounts() during the wait renumbers the attempt.
      this.listener_.recoveryEvent_({ type: 'attempting', attempt: this.attemptsMade_ });
      subscriber.next();
      subscriber.complete();
    };
    const endBackoff = () => {
      if (done || backoffOver) return;
      backoffOver = true;
      timer?.unsubscribe();
      trigger?.unsubscribe();
      if (!this.options.online) return ready();
      // Offline: hold the attempt (no budget spent) until the network is back.
      online = this.options.online.subscribe((isOnline) => {
        if (isOnline) ready();
      });
      // An online$ that answers synchronously (a BehaviorSubject) finished before `online` was set.
      if (done) online.unsubscribe();
    };
    const interrupt = () => {
      if (done) return;
      teardown();
      subscriber.error(this.giveUp_(this.closedFlag_ ? 'closed' : 'suspended', this.failureError_));
    };
    this.interruptWait_ = interrupt;
    timer = this.scheduler.schedule(endBackoff, delayMs);
    if (this.options.trigger && !backoffOver) {
      trigger = this.options.trigger.subscribe(endBackoff);
      if (backoffOver || done) trigger.unsubscribe();
    }
    return teardown;
  }
}
