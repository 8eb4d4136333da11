// A resume server with a durable store, in a process of its own, for the SIGKILL and replica tests.
// argv: port (0: any), store ('sqlite:PATH', 'redis:URL', 'redis-cluster:PORT,PORT,...' or
// 'redis-sentinel:NAME@PORT,PORT,...' of loopback nodes), upstream total, upstream rate (per s),
// upstream start (epoch ms), log file, app ('relay' or 'echo'; default 'relay'), server options
// (JSON: replay limits, and the Redis store's operation timeout, `redisTimeoutMs`, default the store's
// own, 5 s; default '{}').
//
// The upstream is a log of `total` events `u1..uN`, event n due at start + n / rate: events keep
// becoming due while no server runs, and a server that takes a session over continues the log right
// after the session's resumeCursor (the cursor of the last message appended), so the client gets
// every event exactly once across crashes and replicas.
//
// Prints {"port":P} once listening. The application's record goes to the log file, one JSON line
// per event written synchronously (it survives SIGKILL; a pipe's backlog would not), each with the
// process id `p`:
//   {"t":"session","s":ID,"from":N,"restored":BOOL}  a session object started its upstream at N
//   {"t":"in","s":ID,"q":SEQ,"d":TEXT}                a client message delivered to the application
//   {"t":"store","s":ID,"code":CODE}                  a session ended on a store error (typed)
//   {"t":"refused","s":ID,"code":CODE}                a send the session refused (echo app)
import { openSync, writeSync } from 'node:fs';
import type { SessionStore } from '@lifeline/node/server';
import { createResumeServer, RedisSessionStore, SqliteSessionStore } from '@lifeline/node/server';
import { Cluster, Redis } from 'ioredis';
import { type AppRecord, echoApp, relayApp } from './relay-app.js';

const [portArg, storeArg, totalArg, rateArg, startArg, logArg, appArg, optionsArg] = process.argv.slice(2);
const total = Number(totalArg ?? 0);
const rate = Number(rateArg ?? 1_000);
const start = Number(startArg ?? Date.now());
const { redisTimeoutMs, ...serverOptions } = JSON.parse(optionsArg ?? '{}') as {
  maxReplayMessages?: number;
  maxWaitingMessages?: number;
  redisTimeoutMs?: number;
};
const kind = storeArg!.slice(0, storeArg!.indexOf(':'));
const target = storeArg!.slice(kind.length + 1);
const loopback = (ports: string) =>
  ports.split(',').map((port) => ({ host: '127.0.0.1', port: Number(port) }));
/** A cluster or sentinel client rides out a failover (a second or two): the store waits that long. */
function failoverClient(): Cluster | Redis {
  if (kind === 'redis-cluster') {
    return new Cluster(loopback(target), {
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      clusterRetryStrategy: () => 100,
      redisOptions: { maxRetriesPerRequest: null, connectTimeout: 1_000 },
    });
  }
  const [name, ports] = target.split('@') as [string, string];
  return new Redis({
    sentinels: loopback(ports),
    name,
    maxRetriesPerRequest: null,
    sentinelRetryStrategy: () => 100,
    retryStrategy: () => 100,
    connectTimeout: 1_000,
  });
}
let store: SessionStore;
if (kind === 'redis')
  store = new RedisSessionStore({
    redis: target,
    ...(redisTimeoutMs !== undefined && { operationTimeoutMs: redisTimeoutMs }),
  });
else if (kind === 'sqlite') store = new SqliteSessionStore({ path: target });
else {
  const client = failoverClient();
  client.on('error', () => {});
  store = new RedisSessionStore({ redis: client, operationTimeoutMs: 10_000 });
}

const log = openSync(logArg!, 'a');
const server = createResumeServer({
  store,
  sessionTtlMs: 60_000,
  maxReplayMessages: 4_096,
  ...serverOptions,
});
const record = (line: AppRecord) => writeSync(log, `${JSON.stringify({ ...line, p: process.pid })}\n`);
if (appArg === 'echo') echoApp(server, record);
else relayApp(server, { total, rate, start }, record);
const { port } = await server.listen({ port: Number(portArg ?? 0) });
process.stdout.write(`${JSON.stringify({ port })}\n`);
