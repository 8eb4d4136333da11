import { createRequire } from 'node:module';
import {
  after,
  InvalidOptionError,
  MissingPeerDependencyError,
  SessionStoreError,
  StaleOwnerError,
  steadyEpochNow,
} from '@lifeline/core/internal/server';
import type { SessionMetadata, StoredMessage, StoredSession } from '@lifeline/core/resume/server';
import {
  DEFAULT_IDLE_TTL_MS,
  type FencedSessionStore,
  type SessionWatermarks,
} from '@lifeline/core/resume/server';
import type { SchedulerLike, Subscription } from 'rxjs';
import { requirePeer } from '../require-peer.js';

/** What the store needs of a Redis client: ioredis (5 or 6) `Redis` and `Cluster` have it. */
export interface RedisClientLike {
  callBuffer(command: string, ...args: (string | Buffer | number)[]): Promise<unknown>;
  quit(): Promise<unknown>;
  /** A pipeline, for `waitForReplicas` (the script and its WAIT go to the same node). */
  pipeline?(): RedisPipelineLike;
  /** `true` on an ioredis `Cluster`: the store then uses its hash-tagged key layout by default. */
  readonly isCluster?: boolean;
}

/** What `waitForReplicas` needs of a pipeline: ioredis has it. */
export interface RedisPipelineLike {
  callBuffer(command: string, ...args: (string | Buffer | number)[]): unknown;
  exec(): Promise<[Error | null, unknown][] | null>;
}

/** Options of {@link RedisSessionStore}. */
export interface RedisSessionStoreOptions {
  /**
   * The Redis to use: a client (`new Redis(url)` from ioredis, which the caller keeps and closes),
   * or a `redis://` / `rediss://` URL, for which the store creates an ioredis client of its own
   * (ioredis is an optional peer dependency, imported only then) and closes it on `close()`.
   */
  redis: RedisClientLike | string;
  /** Prefix of every key the store writes. @default 'lifeline:' */
  keyPrefix?: string;
  /**
   * A session not written for this long is dropped (its keys expire) even though no detach was
   * recorded (its server died while a client was attached, and the client never came back).
   * @default DEFAULT_IDLE_TTL_MS (24 h)
   */
  idleTtlMs?: number;
  /**
   * An operation that has not completed within this time rejects with a `SessionStoreError`
   * (Redis unreachable). Its command may still run later, in order: every write is idempotent.
   * @default 5_000
   */
  operationTimeoutMs?: number;
  /** Sessions deleted per script by `expire()` (it repeats until done), so one call never blocks Redis for long. @default 1_000 */
  expireBatch?: number;
  /**
   * The clock, in epoch ms, against which a session's `expiresAt` becomes the time left that
   * Redis counts down (PEXPIRE): give it the server's `now` if you changed that.
   * @default steadyEpochNow (does not step with the wall clock)
   */
  now?: () => number;
  /** Drives the operation timeout (a `TestScheduler` in marble tests). @default monotonicScheduler */
  scheduler?: SchedulerLike;
  /**
   * The key layout for Redis Cluster: every key of a session, and the deadline index that lists
   * it, share one hash tag (`lifeline:{7}:<id>:m`, `lifeline:{7}:<id>:r`, `lifeline:{7}:deadlines`),
   * so each script touches one slot. The session's shard (`7`) is a hash of its id modulo
   * {@link clusterShards}. Standalone and Sentinel deployments may use it too; it is a different
   * key format from the default one (`lifeline:<id>:m`, one `lifeline:deadlines`), so switching
   * an existing deployment orphans the sessions stored under the old keys (they expire by TTL).
   * @default true when `redis` is an ioredis `Cluster` (`isCluster`), else false
   */
  cluster?: boolean;
  /**
   * Shards of the cluster layout: sessions spread over this many hash tags (slots), and
   * `expire()` runs one script per shard. Raise it for a cluster of many masters.
   * @default 64
   */
  clusterShards?: number;
  /**
   * After each write script, `WAIT replicas timeoutMs` on the same node: the write resolves once
   * that many replicas acknowledged it, and rejects with a `SessionStoreError` if fewer did within
   * `timeoutMs` (the write stays on the primary; a failover before it replicates may lose it).
   * Narrows, does not close, the window of Redis's asynchronous replication: a write that the
   * store confirmed is on `replicas` + 1 nodes. Needs the client's `pipeline()`.
   * @default undefined (no WAIT: a write is confirmed once the primary ran it)
   */
  waitForReplicas?: { readonly replicas: number; readonly timeoutMs: number };
}

export const DEFAULT_REDIS_KEY_PREFIX = 'lifeline:';
export const DEFAULT_REDIS_OPERATION_TIMEOUT_MS = 5_000;
export const DEFAULT_REDIS_EXPIRE_BATCH = 1_000;
export const DEFAULT_REDIS_CLUSTER_SHARDS = 64;

const WRITES: ReadonlySet<string> = new Set(['save', 'update', 'append', 'acknowledge', 'claim', 'delete']);

/** The error a fenced script raises; the owner's epoch follows. */
const FENCED = 'LIFELINE_FENCED';
/**
 * The error of a write that would leave the session inconsistent because its stored state went
 * back under its live owner (a failover to a replica that had not received the last writes): an
 * append after a hole in the replay log, or an acknowledgement beyond the last stored message.
 * Refused, so the owner drops its copy and the client's next resume is checked against what the
 * store holds (and reported lost), instead of a state that a resume would replay with a gap, or
 * that every later append would refuse again (a resume loop).
 */
const GAP = 'LIFELINE_GAP';

// Every write script first checks the fence: ARGV[1] is the writer's epoch ('' = unfenced). A
// session that is gone makes the write a no-op. Numbers stay strings end to end: Lua would print
// a large one in exponent form.
const FENCE = `
local epoch = redis.call('HGET', KEYS[1], 'ep')
if not epoch then return 0 end
if ARGV[1] ~= '' and ARGV[1] ~= epoch then return redis.error_reply('${FENCED} ' .. epoch) end
`;
// The deadline is expiresAt once detached, else the idle limit (ARGV[4] ms after ARGV[3], the
// writer's now); the deadline index, in the servers' epoch ms, lets expire(now) report them. The
// keys themselves expire after the time left, relative (PEXPIRE): measured by Redis from the
// write, so neither the writer's clock nor a difference between its clock and Redis's moves it.
const REFRESH = `
local function refresh()
  local expiresAt = redis.call('HGET', KEYS[1], 'ea')
  local now = tonumber(ARGV[3])
  local deadline = now + tonumber(ARGV[4])
  if expiresAt and expiresAt ~= '' then deadline = tonumber(expiresAt) end
  local left = string.format('%.0f', math.max(1, math.floor(deadline - now)))
  redis.call('ZADD', KEYS[3], string.format('%.0f', deadline), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], left)
  redis.call('PEXPIRE', KEYS[2], left)
end
`;

const SCRIPTS = {
  // ARGV: '', id, now, idleTtl, tokenHash, retiredTokenHash, tokenConfirmed, createdAt, expiresAt,
  // lastSent, peerAcked, received, epoch, cursor ('1' .. cursor, or '0'), entries...
  save: `${REFRESH}
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'th', ARGV[5], 'tc', ARGV[7], 'ca', ARGV[8], 'ea', ARGV[9], 'ls', ARGV[10],
  'pa', ARGV[11], 'rc', ARGV[12], 'ep', ARGV[13])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'rth', ARGV[6]) end
if string.sub(ARGV[14], 1, 1) == '1' then redis.call('HSET', KEYS[1], 'cu', string.sub(ARGV[14], 2)) end
for i = 15, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
refresh()
return 1`,
  // ARGV: epoch, id, now, idleTtl, then field/value pairs ('rth' '' deletes it; 'ea' '' = attached).
  update: `${REFRESH}${FENCE}
for i = 5, #ARGV, 2 do
  if ARGV[i] == 'rth' and ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], 'rth')
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
refresh()
return 1`,
  // ARGV: epoch, id, now, idleTtl, then triples: seq, entry, cursor ('1' .. cursor, or '0'). The
  // writer appends contiguously after what it stored: a seq beyond last + 1 means the store lost writes.
  append: `${REFRESH}${FENCE}
local last = tonumber(redis.call('HGET', KEYS[1], 'ls'))
local lastText, cursor
for i = 5, #ARGV, 3 do
  local seq = tonumber(ARGV[i])
  if seq > last + 1 then return redis.error_reply('${GAP} ' .. last) end
  if seq > last then
    redis.call('RPUSH', KEYS[2], ARGV[i + 1])
    last = seq
    lastText = ARGV[i]
    if string.sub(ARGV[i + 2], 1, 1) == '1' then cursor = string.sub(ARGV[i + 2], 2) end
  end
end
if lastText then
  redis.call('HSET', KEYS[1], 'ls', lastText)
  if cursor then redis.call('HSET', KEYS[1], 'cu', cursor) end
end
refresh()
return 1`,
  // ARGV: epoch, id, now, idleTtl, peerAcked ('' = unchanged), received ('' = unchanged),
  // delivered ('' = unchanged). The peer acknowledges only what was stored before it was sent:
  // beyond lastSent, the store went back.
  acknowledge: `${REFRESH}${FENCE}
if ARGV[5] ~= '' and tonumber(ARGV[5]) > tonumber(redis.call('HGET', KEYS[1], 'ls')) then
  return redis.error_reply('${GAP} ' .. redis.call('HGET', KEYS[1], 'ls'))
end
if ARGV[7] and ARGV[7] ~= '' and tonumber(ARGV[7]) > tonumber(redis.call('HGET', KEYS[1], 'dl') or '0') then
  redis.call('HSET', KEYS[1], 'dl', ARGV[7])
end
if ARGV[6] ~= '' and tonumber(ARGV[6]) > tonumber(redis.call('HGET', KEYS[1], 'rc')) then
  redis.call('HSET', KEYS[1], 'rc', ARGV[6])
end
if ARGV[5] ~= '' then
  local acked = tonumber(ARGV[5])
  if acked > tonumber(redis.call('HGET', KEYS[1], 'pa')) then
    redis.call('HSET', KEYS[1], 'pa', ARGV[5])
    local head = redis.call('LINDEX', KEYS[2], 0)
    while head and tonumber(string.match(head, '^(%d+):')) <= acked do
      redis.call('LPOP', KEYS[2])
      head = redis.call('LINDEX', KEYS[2], 0)
    end
  end
end
refresh()
return 1`,
  // ARGV: knownEpoch ('' = none). Returns the epoch, or nil for an unknown session.
  claim: `
local epoch = redis.call('HGET', KEYS[1], 'ep')
if not epoch then return false end
if ARGV[1] ~= '' and ARGV[1] == epoch then return epoch end
return redis.call('HINCRBY', KEYS[1], 'ep', 1)`,
  // ARGV: epoch, id.
  delete: `${FENCE}
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1`,
  load: `
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then return false end
return { meta, redis.call('LRANGE', KEYS[2], 0, -1) }`,
  // KEYS[1]: the deadline index. ARGV: now, limit, key prefix.
  expire: `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do
  redis.call('DEL', ARGV[3] .. id .. ':m', ARGV[3] .. id .. ':r')
  redis.call('ZREM', KEYS[1], id)
end
return ids`,
} as const;

type ScriptName = keyof typeof SCRIPTS;

// `node:crypto` is `require`d when the first script is sent, not imported: an ES import of a
// built-in builds its namespace, which reads every export, `webcrypto` among them, and so loads
// Web Crypto in every process that imports `@lifeline/node/server`, whether or not it uses this
// store (~0.8 ms of CPU at a server's start, server-import-graph.test.ts; `node:crypto` itself,
// which `ws` loads anyway, is ~6 ms).
const requireFromHere = createRequire(import.meta.url);
let shas: Record<ScriptName, string> | undefined;

/** The SHA-1 (hex) of a script, as `EVALSHA` names it; computed on first use. */
function sha(name: ScriptName): string {
  if (!shas) {
    const { createHash } = requireFromHere('node:crypto') as typeof import('node:crypto');
    shas = Object.fromEntries(
      Object.entries(SCRIPTS).map(([script, body]) => [
        script,
        createHash('sha1').update(body).digest('hex'),
      ]),
    ) as Record<ScriptName, string>;
  }
  return shas[name];
}

/**
 * A {@link FencedSessionStore} in Redis, for a fleet of replicas behind a load balancer: a client
 * whose server died resumes on any other replica. Each session is a hash (metadata, watermarks,
 * epoch, cursor) and a list (the replay log) whose TTL follows the session's deadline (refreshed
 * on detach and on every write, as a relative TTL that Redis counts, so the writer's clock being
 * off from Redis's does not move it); a sorted set indexes the deadlines for `expire()`. Every
 * operation is one Lua script, so it is atomic, and every write checks the session's epoch.
 *
 * Runs on one Redis primary (standalone, or behind Sentinel: an ioredis client made with
 * `sentinels`), or on Redis Cluster (an ioredis `Cluster`, see {@link RedisSessionStoreOptions.cluster}):
 * every script touches one slot. Durability is Redis's own (`appendonly yes` with `appendfsync
 * everysec` or `always`); replication is asynchronous, so a failover can lose the last writes
 * unless `waitForReplicas` narrows the window. A session whose stored state went back that way
 * is reported lost (SessionLostError) at its next resume, never resumed with a gap or repeat.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createResumeServer, RedisSessionStore } from '@lifeline/node/server';
 * const store = new RedisSessionStore({ redis: new Redis(process.env.REDIS_URL!) });
 * const server = createResumeServer({ store });
 * ```
 * @see docs/durable-sessions.md
 */
export class RedisSessionStore implements FencedSessionStore {
  readonly keyPrefix: string;
  readonly idleTtlMs: number;
  readonly operationTimeoutMs: number;
  private readonly expireBatch: number;
  private readonly now: () => number;
  private readonly scheduler: SchedulerLike | undefined;
  private readonly client: Promise<RedisClientLike & Partial<OwnedRedisClient>>;
  private readonly ownsClient: boolean;
  private readonly clusterShards: number | undefined;
  private readonly waitForReplicas: { readonly replicas: number; readonly timeoutMs: number } | undefined;
  private closed = false;

  /**
   * @throws InvalidOptionError when an option is out of range or of the wrong type (`redis`
   *   neither a URL nor a client with `callBuffer()`; a time not a positive number of ms, or an
   *   `operationTimeoutMs` over 2^31 - 1 ms, beyond which Node's timers fire at once)
   */
  constructor(options: RedisSessionStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError(
        'RedisSessionStore needs options: { redis: <ioredis client or redis:// URL> }',
      );
    }
    checkRedis(options.redis);
    checkMs('idleTtlMs', options.idleTtlMs, Number.MAX_SAFE_INTEGER);
    checkMs('operationTimeoutMs', options.operationTimeoutMs);
    if (
      options.expireBatch !== undefined &&
      !(Number.isInteger(options.expireBatch) && options.expireBatch >= 1)
    ) {
      throw new InvalidOptionError(`expireBatch must be an integer >= 1, got ${String(options.expireBatch)}`);
    }
    if (options.keyPrefix !== undefined && typeof options.keyPrefix !== 'string') {
      throw new InvalidOptionError(`keyPrefix must be a string, got ${typeof options.keyPrefix}`);
    }
    this.keyPrefix = options.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX;
    this.idleTtlMs = options.idleTtlMs ?? DEFAULT_IDLE_TTL_MS;
    this.operationTimeoutMs = options.operationTimeoutMs ?? DEFAULT_REDIS_OPERATION_TIMEOUT_MS;
    this.expireBatch = options.expireBatch ?? DEFAULT_REDIS_EXPIRE_BATCH;
    this.now = options.now ?? steadyEpochNow;
    this.scheduler = options.scheduler;
    if (!(this.idleTtlMs > 0) || !(this.operationTimeoutMs > 0) || !(this.expireBatch >= 1)) {
      throw new InvalidOptionError('idleTtlMs and operationTimeoutMs must be > 0, expireBatch >= 1');
    }
    const redis = options.redis;
    const cluster = options.cluster ?? (typeof redis !== 'string' && redis.isCluster === true);
    const shards = options.clusterShards ?? DEFAULT_REDIS_CLUSTER_SHARDS;
    if (cluster && (!Number.isInteger(shards) || shards < 1 || shards > 16_384)) {
      throw new InvalidOptionError('clusterShards must be an integer from 1 to 16,384');
    }
    // The first {...} of a key is its hash tag: a brace in the prefix would replace the shard's.
    if (cluster && /[{}]/.test(this.keyPrefix)) {
      throw new InvalidOptionError('keyPrefix must not contain { or } with the cluster key layout');
    }
    this.clusterShards = cluster ? shards : undefined;
    const wait = options.waitForReplicas;
    if (
      wait !== undefined &&
      (!Number.isInteger(wait.replicas) ||
        wait.replicas < 1 ||
        !(wait.timeoutMs > 0) ||
        !Number.isInteger(wait.timeoutMs))
    ) {
      throw new InvalidOptionError('waitForReplicas needs replicas >= 1 and timeoutMs > 0');
    }
    if (wait !== undefined && typeof redis !== 'string' && typeof redis.pipeline !== 'function') {
      throw new InvalidOptionError('waitForReplicas needs a client with pipeline() (ioredis)');
    }
    this.waitForReplicas = wait;
    this.ownsClient = typeof redis === 'string';
    this.client = typeof redis === 'string' ? connect(redis) : Promise.resolve(redis);
    // A URL that cannot be used surfaces on the first operation, not as an unhandled rejection.
    this.client.catch(() => {});
  }

  /**
   * Resolves once Redis answers a PING; `listen()` awaits it, so a server whose Redis cannot be
   * reached does not start.
   * @throws MissingPeerDependencyError naming `ioredis` when `redis` is a URL and ioredis is not installed
   * @throws SessionStoreError when Redis does not answer within `operationTimeoutMs` (unreachable,
   *   refused, wrong password), or the store is closed
   */
  async ready(): Promise<void> {
    // The driver missing is the caller's install to fix: its own error, not a store failure.
    await this.client;
    await this.run('ready', undefined, []);
  }

  async load(id: string): Promise<StoredSession | undefined> {
    const reply = (await this.run('load', id, [])) as [Buffer[], Buffer[]] | null;
    if (!reply) return undefined;
    const [flat, entries] = reply;
    const meta = new Map<string, Buffer>();
    for (let i = 0; i + 1 < flat.length; i += 2) meta.set(flat[i]!.toString(), flat[i + 1]!);
    const number = (field: string) => Number(meta.get(field)?.toString() ?? 0);
    const expiresAt = meta.get('ea')?.toString();
    const retired = meta.get('rth');
    return {
      id,
      tokenHash: bytes(meta.get('th') ?? Buffer.alloc(0)),
      retiredTokenHash: retired ? bytes(retired) : null,
      tokenConfirmed: meta.get('tc')?.toString() === '1',
      createdAt: number('ca'),
      expiresAt: expiresAt ? Number(expiresAt) : null,
      lastSent: number('ls'),
      peerAcked: number('pa'),
      received: number('rc'),
      delivered: number('dl'),
      epoch: number('ep'),
      cursor: meta.get('cu')?.toString() ?? null,
      replay: entries.map(decodeEntry),
    };
  }

  async save(session: StoredSession): Promise<void> {
    await this.run('save', session.id, [
      '',
      session.id,
      ...this.clockArgs(),
      Buffer.from(session.tokenHash),
      session.retiredTokenHash ? Buffer.from(session.retiredTokenHash) : '',
      session.tokenConfirmed ? '1' : '0',
      String(session.createdAt),
      session.expiresAt === null ? '' : String(session.expiresAt),
      String(session.lastSent),
      String(session.peerAcked),
      String(session.received),
      String(session.epoch ?? 0),
      cursorArg(session.cursor ?? undefined),
      ...session.replay.map(encodeEntry),
    ]);
  }

  async update(id: string, metadata: Partial<SessionMetadata>, epoch?: number): Promise<void> {
    const pairs: (string | Buffer)[] = [];
    if (metadata.tokenHash !== undefined) pairs.push('th', Buffer.from(metadata.tokenHash));
    if (metadata.retiredTokenHash !== undefined) {
      pairs.push('rth', metadata.retiredTokenHash ? Buffer.from(metadata.retiredTokenHash) : '');
    }
    if (metadata.tokenConfirmed !== undefined) pairs.push('tc', metadata.tokenConfirmed ? '1' : '0');
    if (metadata.expiresAt !== undefined)
      pairs.push('ea', metadata.expiresAt === null ? '' : String(metadata.expiresAt));
    await this.run('update', id, [fenceArg(epoch), id, ...this.clockArgs(), ...pairs]);
  }

  async append(id: string, messages: readonly StoredMessage[], epoch?: number): Promise<void> {
    if (messages.length === 0) return;
    const args: (string | Buffer)[] = [fenceArg(epoch), id, ...this.clockArgs()];
    for (const message of messages)
      args.push(String(message.seq), encodeEntry(message), cursorArg(message.cursor));
    await this.run('append', id, args);
  }

  async acknowledge(id: string, watermarks: SessionWatermarks, epoch?: number): Promise<void> {
    await this.run('acknowledge', id, [
      fenceArg(epoch),
      id,
      ...this.clockArgs(),
      watermarks.peerAcked === undefined ? '' : String(watermarks.peerAcked),
      watermarks.received === undefined ? '' : String(watermarks.received),
      watermarks.delivered === undefined ? '' : String(watermarks.delivered),
    ]);
  }

  async claim(id: string, knownEpoch?: number): Promise<number | undefined> {
    const reply = await this.run('claim', id, [fenceArg(knownEpoch)]);
    return reply === null || reply === undefined ? undefined : Number(String(reply));
  }

  async delete(id: string, epoch?: number): Promise<void> {
    await this.run('delete', id, [fenceArg(epoch), id]);
  }

  /** Deletes the sessions whose deadline passed (detached past `expiresAt`, or idle too long); returns their ids. */
  async expire(now: number): Promise<string[]> {
    const shards =
      this.clusterShards === undefined
        ? [undefined]
        : Array.from({ length: this.clusterShards }, (_, i) => i);
    const expired = await Promise.all(shards.map((shard) => this.expireShard(now, shard)));
    return expired.flat();
  }

  private async expireShard(now: number, shard: number | undefined): Promise<string[]> {
    const expired: string[] = [];
    // Bounded: each script deletes at most expireBatch sessions; a few rounds clear any backlog.
    for (let round = 0; round < 1_000; round++) {
      const ids = (await this.run(
        'expire',
        undefined,
        [String(now), String(this.expireBatch), this.sessionKeyPrefix(shard)],
        shard,
      )) as Buffer[] | null;
      for (const id of ids ?? []) expired.push(id.toString());
      if (!ids || ids.length < this.expireBatch) break;
    }
    return expired;
  }

  /**
   * Closes the Redis client if the store created it (from a URL); a client handed in stays the
   * caller's. Resolves within `operationTimeoutMs` even when Redis is unreachable, and leaves
   * nothing that keeps the process alive.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.ownsClient) return;
    const client = await this.client.catch(() => undefined);
    if (!client) return;
    // QUIT lets Redis finish what it was sent, but ioredis queues it while the server is
    // unreachable and keeps reconnecting to deliver it: an unbounded wait, and timers that keep the
    // process alive. Only a connected client is asked to QUIT, for at most operationTimeoutMs;
    // then the client is disconnected, which stops its reconnecting and rejects what it still holds.
    if (client.status === undefined || client.status === 'ready') {
      let timer: Subscription | undefined;
      await Promise.race([
        client.quit().catch(() => {}),
        new Promise<void>((resolve) => {
          timer = after(this.operationTimeoutMs, resolve, this.scheduler);
        }),
      ]);
      timer?.unsubscribe();
    }
    client.disconnect?.();
  }

  /** `now` (epoch ms that do not step, the servers' clock) and the idle TTL, for the scripts' refresh(). */
  private clockArgs(): [string, string] {
    return [String(this.now()), String(this.idleTtlMs)];
  }

  /** The shard of a session in the cluster layout (FNV-1a of its id), else undefined. */
  private shardOf(id: string): number | undefined {
    if (this.clusterShards === undefined) return undefined;
    let hash = 0x811c9dc5;
    for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193) >>> 0;
    return hash % this.clusterShards;
  }

  /** What precedes a session id in its keys: the prefix, and in the cluster layout the shard's hash tag. */
  private sessionKeyPrefix(shard: number | undefined): string {
    return shard === undefined ? this.keyPrefix : `${this.keyPrefix}{${shard}}:`;
  }

  /** A session's keys and its deadline index (all in one slot), or (no id) the index of `shard`. */
  private keys(id: string | undefined, shard: number | undefined): string[] {
    const prefix = this.sessionKeyPrefix(shard);
    const deadlines = `${prefix}deadlines`;
    return id === undefined ? [deadlines] : [`${prefix}${id}:m`, `${prefix}${id}:r`, deadlines];
  }

  /** Runs a script (EVALSHA, loading it on NOSCRIPT) under the operation timeout; errors become typed. */
  private async run(
    name: ScriptName | 'ready',
    id: string | undefined,
    args: readonly (string | Buffer)[],
    shard: number | undefined = id === undefined ? undefined : this.shardOf(id),
  ): Promise<unknown> {
    if (this.closed) throw new SessionStoreError(name, id, 'the store is closed');
    const keys = this.keys(id, shard);
    let timer: Subscription | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = after(
        this.operationTimeoutMs,
        () =>
          reject(
            new SessionStoreError(name, id, `no answer from Redis within ${this.operationTimeoutMs} ms`),
          ),
        this.scheduler,
      );
    });
    const wait = WRITES.has(name) ? this.waitForReplicas : undefined;
    const call = async () => {
      const client = await this.client;
      if (name === 'ready') return await client.callBuffer('PING');
      if (wait) return await this.runAndWait(client, name, id, keys, args, wait);
      try {
        return await client.callBuffer('EVALSHA', sha(name), keys.length, ...keys, ...args);
      } catch (error) {
        if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
        return await client.callBuffer('EVAL', SCRIPTS[name], keys.length, ...keys, ...args);
      }
    };
    try {
      return await Promise.race([call(), timeout]);
    } catch (error) {
      throw typed(name, id, args[0], error);
    } finally {
      timer?.unsubscribe();
    }
  }

  /**
   * The script then `WAIT` in one pipeline, so both go to the node that holds the session's slot
   * (a keyless WAIT on its own would go to any node of a cluster).
   */
  private async runAndWait(
    client: RedisClientLike,
    name: ScriptName,
    id: string | undefined,
    keys: readonly string[],
    args: readonly (string | Buffer)[],
    wait: { readonly replicas: number; readonly timeoutMs: number },
  ): Promise<unknown> {
    const attempt = async (command: 'EVALSHA' | 'EVAL') => {
      const pipeline = client.pipeline!();
      pipeline.callBuffer(
        command,
        command === 'EVAL' ? SCRIPTS[name] : sha(name),
        keys.length,
        ...keys,
        ...args,
      );
      pipeline.callBuffer('WAIT', String(wait.replicas), String(wait.timeoutMs));
      const replies = (await pipeline.exec()) ?? [];
      const [script, waited] = replies;
      if (!script || !waited) throw new SessionStoreError(name, id, 'the pipeline was not run');
      return { script, waited };
    };
    let { script, waited } = await attempt('EVALSHA');
    if (script[0] && String(script[0].message).startsWith('NOSCRIPT'))
      ({ script, waited } = await attempt('EVAL'));
    if (script[0]) throw script[0];
    if (waited[0]) throw waited[0];
    const acknowledged = Number(String(waited[1]));
    if (acknowledged < wait.replicas) {
      throw new SessionStoreError(
        name,
        id,
        `WAIT: ${acknowledged} of ${wait.replicas} replica(s) acknowledged the write within ${wait.timeoutMs} ms`,
      );
    }
    return script[1];
  }
}

/** What `close()` uses of the ioredis client the store creates from a URL. */
interface OwnedRedisClient {
  /** ioredis's connection state: `'ready'` once connected. */
  readonly status: string;
  /** Closes at once and stops reconnecting; queued commands reject. */
  disconnect(): void;
}

async function connect(url: string): Promise<RedisClientLike & OwnedRedisClient> {
  let driver: {
    Redis?: new (url: string) => RedisClientLike & OwnedRedisClient;
    default?: new (url: string) => RedisClientLike & OwnedRedisClient;
  };
  try {
    // ioredis is CommonJS: required, so its absence is a MissingPeerDependencyError naming it.
    driver = requirePeer<typeof driver>('ioredis', '@lifeline/node/stores/redis (a redis:// URL)');
  } catch (error) {
    if (error instanceof MissingPeerDependencyError) throw error;
    throw new SessionStoreError('connect', undefined, 'ioredis could not be loaded', { cause: error });
  }
  const Redis = (driver.Redis ?? driver.default)!;
  const client = new Redis(url) as RedisClientLike &
    OwnedRedisClient & { on?(event: 'error', listener: () => void): unknown };
  // Connection errors reach the caller as rejected operations; the client keeps reconnecting.
  client.on?.('error', () => {});
  return client;
}

function typed(
  name: string,
  id: string | undefined,
  fence: string | Buffer | undefined,
  error: unknown,
): unknown {
  if (error instanceof SessionStoreError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const fenced = new RegExp(`^${FENCED} (\\d+)`).exec(message);
  if (fenced && id !== undefined) return new StaleOwnerError(id, Number(String(fence)), Number(fenced[1]));
  return new SessionStoreError(name, id, message, { cause: error });
}

/** Node's timers take at most 2^31 - 1 ms; a larger delay fires after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** `max`: {@link MAX_TIMER_MS} for a time a timer counts, larger for a TTL that Redis counts. */
function checkMs(name: string, value: number | undefined, max = MAX_TIMER_MS): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !(value > 0) || value > max) {
    throw new InvalidOptionError(`${name} must be a number of ms from 1 to ${max}, got ${String(value)}`);
  }
}

function checkRedis(redis: unknown): void {
  if (typeof redis === 'string') {
    if (!/^rediss?:\/\//.test(redis)) {
      throw new InvalidOptionError(`redis must be a redis:// or rediss:// URL, got ${JSON.stringify(redis)}`);
    }
    return;
  }
  const client = redis as Partial<RedisClientLike> | null;
  if (typeof client !== 'object' || client === null || typeof client.callBuffer !== 'function') {
    throw new InvalidOptionError(
      `redis must be an ioredis client (Redis or Cluster) or a redis:// URL, got ${redis === null ? 'null' : typeof redis}`,
    );
  }
}

function fenceArg(epoch: number | undefined): string {
  return epoch === undefined ? '' : String(epoch);
}

function cursorArg(cursor: string | undefined): string {
  return cursor === undefined ? '0' : `1${cursor}`;
}

/** A replay entry: `seq:kind:` then the payload bytes (the script reads only the seq). */
function encodeEntry(message: StoredMessage): Buffer {
  const header = Buffer.from(`${message.seq}:${message.kind === 'binary' ? 'b' : 't'}:`);
  return Buffer.concat([header, message.payload]);
}

function decodeEntry(entry: Buffer): StoredMessage {
  const first = entry.indexOf(0x3a);
  const second = entry.indexOf(0x3a, first + 1);
  return {
    seq: Number(entry.subarray(0, first).toString()),
    kind: entry[first + 1] === 0x62 ? 'binary' : 'text',
    payload: bytes(entry.subarray(second + 1)),
  };
}

function bytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
