import { Observable } from 'rxjs';

/** What {@link onlineStatus} listens to: a window, or a worker's global scope. */
export interface OnlineEventSource {
  addEventListener(type: 'online' | 'offline', listener: () => void): void;
  removeEventListener(type: 'online' | 'offline', listener: () => void): void;
  readonly navigator?: { readonly onLine?: boolean };
}

/**
 * Whether the browser believes it is online: `navigator.onLine` at subscription, then each
 * `online` / `offline` event (repeats suppressed). Hand it to `attach`'s `online` option so no
 * recovery attempt, and no attempt budget, is spent while the device is offline.
 *
 * Where there is no event source (a runtime without `window`), it emits `true` once and stays
 * silent, so recovery is never held back by a signal that cannot arrive.
 *
 * @param target The window or worker scope to listen to. @default globalThis, read at subscription
 * @example
 * ```ts
 * const conn = attach(browserTransport(url), { online: onlineStatus() });
 * ```
 * @see browserRecoveryDefaults
 */
export function onlineStatus(target?: OnlineEventSource): Observable<boolean> {
  return new Observable<boolean>((subscriber) => {
    const source = target ?? (globalThis as unknown as Partial<OnlineEventSource>);
    if (typeof source.addEventListener !== 'function' || typeof source.removeEventListener !== 'function') {
      subscriber.next(true);
      return undefined;
    }
    let last: boolean | undefined;
    const emit = (online: boolean) => {
      if (online === last) return;
      last = online;
      subscriber.next(online);
    };
    const onOnline = () => emit(true);
    const onOffline = () => emit(false);
    source.addEventListener('online', onOnline);
    source.addEventListener('offline', onOffline);
    // `onLine === false` is reliable; `true` only means "some network interface is up".
    emit(source.navigator?.onLine !== false);
    return () => {
      source.removeEventListener!('online', onOnline);
      source.removeEventListener!('offline', onOffline);
    };
  });
}
