import { Observable } from 'rxjs';

/** What {@link visibleTrigger} listens to: a document. */
export interface VisibilityEventSource {
  readonly visibilityState: string;
  addEventListener(type: 'visibilitychange', listener: () => void): void;
  removeEventListener(type: 'visibilitychange', listener: () => void): void;
}

/**
 * Emits each time the page becomes visible again. Hand it to `attach`'s `trigger` option: a
 * user returning to a tab should not wait out a long backoff delay that grew while the tab
 * was hidden (browsers also throttle timers in hidden tabs).
 *
 * Where there is no document (a worker, a server), it never emits.
 *
 * @param target The document to watch. @default globalThis.document, read at subscription
 * @example
 * ```ts
 * const conn = attach(browserTransport(url), { trigger: visibleTrigger() });
 * ```
 * @see browserRecoveryDefaults
 */
export function visibleTrigger(target?: VisibilityEventSource): Observable<void> {
  return new Observable<void>((subscriber) => {
    const source = target ?? (globalThis as { document?: VisibilityEventSource }).document;
    if (source === undefined || typeof source.addEventListener !== 'function') return undefined;
    const onChange = () => {
      if (source.visibilityState === 'visible') subscriber.next();
    };
    source.addEventListener('visibilitychange', onChange);
    return () => source.removeEventListener('visibilitychange', onChange);
  });
}
