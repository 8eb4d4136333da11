// Counts the promises a synchronous piece of code creates (async_hooks' PROMISE resources): the
// send-cost tests assert that a send makes none per message.
import { createHook } from 'node:async_hooks';

/** Counts the promises created while `body` runs (synchronously). */
export function promisesMadeBy(body: () => void): number {
  let promises = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROMISE') promises++;
    },
  });
  hook.enable();
  try {
    body();
  } finally {
    hook.disable();
  }
  return promises;
}
