import type { RecoveryOptions } from '@lifeline/core/internal';
import { Observable } from 'rxjs';
import { type OnlineEventSource, onlineStatus } from './online-status.js';
import { type VisibilityEventSource, visibleTrigger } from './visible-trigger.js';

/** What {@link browserRecoveryDefaults} returns: the two {@link RecoveryOptions} it fills in. */
export interface BrowserRecoveryOptions {
  /** `true` while the browser says it is online (`navigator.onLine`, `online`/`offline` events). */
  online: Observable<boolean>;
  /** Emits when the browser comes back online or the page becomes visible. */
  trigger: Observable<unknown>;
}

/** Where {@link browserRecoveryDefaults} listens. */
export interface BrowserRecoveryTargets {
  /** Source of `online` / `offline` events. @default globalThis */
  window?: OnlineEventSource;
  /** Source of `visibilitychange` events. @default globalThis.document */
  document?: VisibilityEventSource;
}

/**
 * The browser's recovery signals as {@link RecoveryOptions}: `online` holds every attempt while
 * the browser is offline (no attempt and no budget is spent on a network that is not there),
 * and `trigger` cuts the backoff wait short the moment the browser comes back online or the page
 * becomes visible, so recovery starts at once instead of after a backoff that grew meanwhile.
 *
 * `HAWebSocket` and `haFetch` from this package apply these unless told otherwise; spread them
 * into `attach`'s options yourself when you build on the core.
 *
 * @example
 * ```ts
 * const conn = attach(browserTransport(url), { ...browserRecoveryDefaults(), maxAttemptsPerFailure: 20 });
 * ```
 * @see onlineStatus
 * @see visibleTrigger
 */
export function browserRecoveryDefaults(targets: BrowserRecoveryTargets = {}): BrowserRecoveryOptions {
  const online = onlineStatus(targets.window);
  const visible = visibleTrigger(targets.document);
  // Written without merge/skip/filter: those operators would double the rxjs this package ships.
  const trigger = new Observable<void>((subscriber) => {
    let first = true;
    const backOnline = online.subscribe((isOnline) => {
      // The first value is the current status, not a change: only a later `true` is "back online".
      if (!first && isOnline) subscriber.next();
      first = false;
    });
    const becameVisible = visible.subscribe(() => subscriber.next());
    return () => {
      backOnline.unsubscribe();
      becameVisible.unsubscribe();
    };
  });
  return { online, trigger };
}
