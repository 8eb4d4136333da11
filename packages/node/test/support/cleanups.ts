// The one disposal style of the tests: whatever a test starts (a server, a socket, a child process,
// a connection) is registered right where it is made, and vitest's `onTestFinished` runs it when
// the test ends, passed or failed, last registered first, awaited, bounded by the hook timeout.
import { onTestFinished } from 'vitest';

/**
 * `cleanups.push(step, ...)`: runs each step when the current test finishes (see above). Call it
 * inside a test or a `beforeEach`; the name is the one the tests used for their afterEach arrays.
 */
export const cleanups = {
  push(...steps: (() => unknown)[]): void {
    for (const step of steps) {
      onTestFinished(async () => {
        await step();
      });
    }
  },
};
