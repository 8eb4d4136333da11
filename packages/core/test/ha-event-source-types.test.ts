/** HAEventSource's typed listeners (checked by `tsc -p packages/core/test`), and its constants. */
import {
  defineHAEventSource,
  type HAEventSourceErrorEvent,
  type HAEventSourceInstance,
} from '@lifeline/core/internal';
import { describe, expect, expectTypeOf, it } from 'vitest';

describe('HAEventSource types', () => {
  it('types listeners by event name: open an Event, message and named events MessageEvent<string>, error with its cause', () => {
    const listen = (source: HAEventSourceInstance) => {
      source.addEventListener('open', (event) => expectTypeOf(event).toEqualTypeOf<Event>());
      source.addEventListener('message', (event) =>
        expectTypeOf(event).toEqualTypeOf<MessageEvent<string>>(),
      );
      source.addEventListener('error', (event) =>
        expectTypeOf(event).toEqualTypeOf<HAEventSourceErrorEvent>(),
      );
      source.addEventListener('price', (event) => {
        expectTypeOf(event.data).toEqualTypeOf<string>();
        expectTypeOf(event.lastEventId).toEqualTypeOf<string>();
      });
      source.onmessage = (event) => expectTypeOf(event.origin).toEqualTypeOf<string>();
      // @ts-expect-error: readyState is read-only, as EventSource's is.
      source.readyState = 1;
    };
    expect(typeof listen).toBe('function');
    const HAEventSource = defineHAEventSource({ fetch: () => Promise.reject(new Error('unused')) });
    expect([HAEventSource.CONNECTING, HAEventSource.OPEN, HAEventSource.CLOSED]).toEqual([0, 1, 2]);
  });
});
