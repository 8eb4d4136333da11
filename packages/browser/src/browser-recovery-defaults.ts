import type { RecoveryOptions } from '@lifeline/core';
import { filter, map, merge, skip } from 'rxjs';
import { type OnlineEventSource, onlineStatus } from './online-status.js';
import { type VisibilityEventSource, visibleTrigger } from './visible-trigger.js';

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
export function browserRecoveryDefaults(
  targets: BrowserRecoveryTargets = {},
): Required<Pick<RecoveryOptions, 'online' | 'trigger'>> {
  const online = onlineStatus(targets.window);
  const backOnline = online.pipe(skip(1), filter(Boolean));
  return {
    online,
    trigger: merge(backOnline, visibleTrigger(targets.document)).pipe(map(() => undefined)),
  };
}
