import { attach, type Link, LinkFailedError, QueueOverflowError, type Transport } from '@lifeline/core';
import { filter, firstValueFrom, Subject } from 'rxjs';
import { expect, test } from 'vitest';

/** Links that replay their own sends (as the resume protocol's do): a send settles only on the session's word. */
function replayingTransport() {
  const links: { messages: Subject<string>; sends: string[] }[] = [];
  const transport: Transport<string, string> = {
    async open() {
      const messages = new Subject<string>();
      const sends: string[] = [];
      links.push({ messages, sends });
      const link: Link<string, string> = {
        messages$: messages.asObservable(),
        replaysSends: true,
        send(data) {
          sends.push(data);
          return new Promise<void>(() => {});
        },
        close() {
          messages.complete();
        },
      };
      return link;
    },
  };
  return { transport, links };
}

test('drop-oldest never drops a send a replaying link still owns: the new send is refused instead', async () => {
  const { transport, links } = replayingTransport();
  const conn = attach(transport, {
    queue: { maxMessages: 2, overflow: 'drop-oldest' },
    backoff: { initialDelayMs: 60_000 },
  });
  const dropped: unknown[] = [];
  conn.events$.subscribe((event) => event.type === 'dropped' && dropped.push(event.data));
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
  const settled: string[] = [];
  const track = (name: string, promise: Promise<void>) =>
    promise.then(
      () => settled.push(`${name} ok`),
      (error: unknown) =>
        settled.push(`${name} ${error instanceof QueueOverflowError ? 'overflow' : 'error'}`),
    );
  track('a', conn.send('a'));
  track('b', conn.send('b'));
  links[0]!.messages.error(new LinkFailedError('reset', { syscallCode: 'ECONNRESET' }));
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'recovering')));
  await track('c', conn.send('c'));
  expect(settled).toEqual(['c overflow']);
  expect(dropped).toEqual([]);
  expect(links[0]!.sends).toEqual(['a', 'b']);
  conn.close();
});
