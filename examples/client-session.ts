// A client whose session survives its own process (docs/durable-sessions.md, the client side): a
// worker sends numbered jobs through a resumable HAWebSocket whose session lives in a file
// (FileClientSessionStore). This script runs a resume server and starts the worker as a child
// process, SIGKILLs it three times mid-stream and starts it again on the same file. Each new
// worker resumes the same session: the jobs stored but not acknowledged are re-sent once, and the
// worker continues its numbering after what the store kept (`session.restored.lastSent`).
//
//   pnpm --filter @lifeline/examples example:client-session
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FileClientSessionStore } from '@lifeline/node/client-store';
import { createResumeServer } from '@lifeline/node/server';
import { HAWebSocket, resume } from '@lifeline/node/ws';

const JOBS = 600;

if (process.argv[2] === '--worker') await worker(process.argv[3]!, process.argv[4]!);
else await main();

/** The worker: sends job-1..job-600, 4 every 10 ms, continuing after what its store kept. */
async function worker(url: string, file: string): Promise<void> {
  // Orphaned (the example was killed): stop too.
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && process.exit(1), 500).unref();
  const store = new FileClientSessionStore(file);
  const socket = new HAWebSocket(url, { resume: resume({ store }), backoff: { initialDelayMs: 20 } });
  await once(socket as unknown as EventTarget, 'open');
  // Read before sending: what the store gave back. Jobs up to lastSent are in the session (the
  // unacknowledged ones are being re-sent); a job handed to send() after the last store write
  // never left this process, so the numbering starts again right after lastSent.
  const restored = socket.session!.restored;
  console.log(
    restored
      ? `worker ${process.pid}: resumed session ${restored.sessionId.slice(0, 8)}, ${restored.pendingOutgoing} job(s) pending re-sent, continuing after job-${restored.lastSent}`
      : `worker ${process.pid}: new session ${socket.session!.id!.slice(0, 8)}`,
  );
  let next = (restored?.lastSent ?? 0) + 1;
  const timer = setInterval(() => {
    for (let i = 0; i < 4 && next <= JOBS; i++) socket.send(`job-${next++}`);
    if (next > JOBS && socket.session!.peerAcked === JOBS) {
      clearInterval(timer);
      socket.close(); // the session is over: the store forgets it
      socket.addEventListener('close', () => store.close());
    }
  }, 10);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-client-session-'));
  const file = join(dir, 'session.json');
  const server = createResumeServer();
  const jobs: string[] = [];
  const sessions = new Set<string>();
  server.sessions$.subscribe((session) => {
    sessions.add(session.id);
    session.messages$.subscribe(({ data }) => jobs.push(String(data)));
  });
  const { port } = await server.listen();
  const url = `ws://127.0.0.1:${port}`;

  for (let run = 1; run <= 4; run++) {
    const child = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), '--worker', url, file],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    createInterface({ input: child.stdout }).on('line', (line) => console.log(line));
    const exited = once(child, 'exit');
    if (run < 4) {
      // Mid-stream: let it send a while, then kill it without warning.
      const target = jobs.length + 100 + Math.floor(Math.random() * 50);
      while (jobs.length < target) await new Promise((resolve) => setTimeout(resolve, 5));
      child.kill('SIGKILL');
      await exited;
      console.log(`killed worker ${child.pid} (SIGKILL) after job-${jobs.length}`);
    } else {
      await exited;
    }
  }
  await server.close();
  rmSync(dir, { recursive: true, force: true });

  const expected = Array.from({ length: JOBS }, (_, i) => `job-${i + 1}`);
  const missing = expected.filter((job) => !jobs.includes(job)).length;
  const duplicated = jobs.length - new Set(jobs).size;
  const inOrder = jobs.every((job, i) => job === expected[i]);
  console.log(`server received: ${jobs.length} jobs`);
  console.log(`missing: ${missing}`);
  console.log(`duplicated: ${duplicated}`);
  console.log(`in order: ${inOrder}`);
  console.log(`server sessions: ${sessions.size}`);
  process.exitCode = missing === 0 && duplicated === 0 && inOrder && sessions.size === 1 ? 0 : 1;
}
