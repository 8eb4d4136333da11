// A resume server in a process of its own, for the SIGKILL tests. Listens on 127.0.0.1 at the
// port given as argv[2] (0: any), prints `{"port":N}` once listening, then one JSON line per
// message received: `{"session":ID,"seq":N,"data":TEXT}`. A message "hold" stops delivery for
// that session (later messages stay unacknowledged), so a test knows exactly what was acked.
import { createResumeServer } from '@lifeline/node/server';

const server = createResumeServer();
server.sessions$.subscribe((session) => {
  const subscription = session.messages$.subscribe(({ seq, data }) => {
    process.stdout.write(`${JSON.stringify({ session: session.id, seq, data: String(data) })}\n`);
    if (data === 'hold') subscription.unsubscribe();
  });
  session.send(`welcome ${session.id}`).catch(() => {});
});
const { port } = await server.listen({ port: Number(process.argv[2] ?? 0) });
process.stdout.write(`${JSON.stringify({ port })}\n`);
