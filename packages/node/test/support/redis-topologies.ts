// Private Redis topologies for the tests, from Debian's redis-server on loopback ports: a Redis
// Cluster (3 masters, 3 replicas) and a Sentinel setup (1 master, 2 replicas, 3 sentinels). Each
// node is a child process the test can SIGKILL; nothing is shared with a system Redis.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { freePort, REDIS_SERVER_BIN, RedisServer } from './redis-server.js';

const REDIS_CLI_BIN = process.env.LIFELINE_REDIS_CLI ?? '/usr/bin/redis-cli';
const run = promisify(execFile);

/** Polls `check` every 50 ms (an external process's state has no event to wait on), up to `timeoutMs`. */
export async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (let round = 0; ; round++) {
    if (await check().catch(() => false)) return;
    if (performance.now() > deadline || round > 100_000)
      throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One command on a short-lived connection to a node (CLUSTER INFO, INFO replication, ...). */
export async function ask(port: number, ...words: string[]): Promise<string> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on('error', () => {});
  try {
    await client.connect();
    return String(await client.call(words[0]!, ...words.slice(1)));
  } finally {
    client.disconnect();
  }
}

/** A Redis Cluster of `masters` masters with one replica each, failing over after `nodeTimeoutMs`. */
export class RedisCluster {
  private constructor(readonly nodes: RedisServer[]) {}

  static async start(options: { masters?: number; nodeTimeoutMs?: number } = {}): Promise<RedisCluster> {
    const masters = options.masters ?? 3;
    const nodes: RedisServer[] = [];
    try {
      for (let i = 0; i < masters * 2; i++) {
        nodes.push(
          await RedisServer.start({
            args: [
              '--cluster-enabled',
              'yes',
              // The bus port is its own free port: port + 10,000 may be taken or out of range.
              '--cluster-port',
              String(await freePort()),
              '--cluster-node-timeout',
              String(options.nodeTimeoutMs ?? 1_000),
              '--cluster-config-file',
              'nodes.conf',
            ],
          }),
        );
      }
      await run(
        REDIS_CLI_BIN,
        [
          '--cluster',
          'create',
          ...nodes.map((node) => `127.0.0.1:${node.port}`),
          '--cluster-replicas',
          '1',
          '--cluster-yes',
        ],
        { timeout: 60_000 },
      );
      const cluster = new RedisCluster(nodes);
      await cluster.waitHealthy(60_000);
      return cluster;
    } catch (error) {
      await Promise.all(nodes.map((node) => node.stop()));
      throw error;
    }
  }

  /**
   * Every live node reports cluster_state:ok, `masters` masters serve (none failing, and a killed
   * one replaced by its promoted replica), and every master has a replica online.
   */
  async waitHealthy(timeoutMs: number, options: { replicas?: boolean } = {}): Promise<void> {
    await until(
      async () => {
        const masters = await this.masters();
        if (masters.length !== this.nodes.length / 2) return false;
        if (masters.some((port) => !this.node(port).running)) return false;
        for (const node of this.nodes.filter((n) => n.running)) {
          if (!(await ask(node.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
        }
        if (options.replicas === false) return true;
        for (const port of masters) {
          if (!/slave0:.*state=online/.test(await ask(port, 'INFO', 'replication'))) return false;
        }
        return true;
      },
      timeoutMs,
      'cluster healthy',
    );
  }

  /** The live masters' ports, from a live node's CLUSTER NODES. */
  async masters(): Promise<number[]> {
    const node = this.nodes.find((n) => n.running)!;
    const lines = (await ask(node.port, 'CLUSTER', 'NODES')).split('\n').filter(Boolean);
    return lines
      .filter((line) => {
        const flags = line.split(' ')[2]!;
        // 'fail?': suspected by this node; 'fail': agreed by the cluster.
        return flags.includes('master') && !flags.includes('fail');
      })
      .map((line) => Number(line.split(' ')[1]!.split('@')[0]!.split(':')[1]));
  }

  /** The store spec of durable-server-process.ts. */
  get spec(): string {
    return `redis-cluster:${this.nodes.map((node) => node.port).join(',')}`;
  }

  /** The replica of the master on `port`. */
  async replicaOf(port: number): Promise<number> {
    const info = await ask(port, 'INFO', 'replication');
    return Number(/slave0:ip=[^,]+,port=(\d+)/.exec(info)![1]);
  }

  node(port: number): RedisServer {
    return this.nodes.find((node) => node.port === port)!;
  }

  /** An ioredis Cluster client on the nodes, quick to follow a failover. */
  client(): Cluster {
    const client = new Cluster(
      this.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
      {
        retryDelayOnFailover: 100,
        retryDelayOnClusterDown: 100,
        retryDelayOnTryAgain: 100,
        slotsRefreshTimeout: 2_000,
        clusterRetryStrategy: () => 100,
        redisOptions: { maxRetriesPerRequest: null, connectTimeout: 1_000 },
      },
    );
    client.on('error', () => {});
    return client;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
  }
}

/** A sentinel process (redis-server --sentinel) with its own config file. */
class SentinelProcess {
  private constructor(
    readonly port: number,
    readonly child: ChildProcess,
  ) {}

  static async start(dir: string, masterName: string, masterPort: number, quorum: number) {
    const port = await freePort();
    const conf = join(dir, `sentinel-${port}.conf`);
    await writeFile(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} ${quorum}`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 10000`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n'),
    );
    const child = spawn(REDIS_SERVER_BIN, [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = createInterface({ input: child.stdout! });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('sentinel not ready within 10 s')), 10_000);
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`sentinel exited with ${code}`));
        });
        lines.on('line', (line) => {
          if (line.includes('+monitor master')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
    } finally {
      lines.close();
      child.stdout!.resume();
      child.stderr!.resume();
    }
    return new SentinelProcess(port, child);
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** One master, `replicas` replicas, three sentinels (quorum 2) monitoring it as `name`. */
export class RedisSentinelSetup {
  readonly name = 'lifeline';

  private constructor(
    readonly dir: string,
    readonly servers: RedisServer[],
    private readonly sentinels: SentinelProcess[],
  ) {}

  /** The store spec of durable-server-process.ts. */
  get spec(): string {
    return `redis-sentinel:${this.name}@${this.sentinels.map((sentinel) => sentinel.port).join(',')}`;
  }

  static async start(options: { replicas?: number } = {}): Promise<RedisSentinelSetup> {
    const dir = await mkdtemp(join(tmpdir(), 'lifeline-sentinel-'));
    const servers: RedisServer[] = [];
    const sentinels: SentinelProcess[] = [];
    const setup = new RedisSentinelSetup(dir, servers, sentinels);
    try {
      servers.push(await RedisServer.start());
      const master = servers[0]!.port;
      for (let i = 0; i < (options.replicas ?? 2); i++) {
        servers.push(await RedisServer.start({ args: ['--replicaof', '127.0.0.1', String(master)] }));
      }
      await until(
        async () =>
          (await ask(master, 'INFO', 'replication')).split('state=online').length === servers.length,
        30_000,
        'replicas connected',
      );
      for (let i = 0; i < 3; i++) sentinels.push(await SentinelProcess.start(dir, setup.name, master, 2));
      // Sentinels discover each other (and the replicas) through the master's hello channel.
      await until(
        async () => {
          const replies = await Promise.all(
            sentinels.map((sentinel) => ask(sentinel.port, 'SENTINEL', 'CKQUORUM', setup.name)),
          );
          return replies.every((reply) => reply.includes('3 usable Sentinels'));
        },
        30_000,
        'sentinels discovered each other',
      );
      return setup;
    } catch (error) {
      await setup.stop();
      throw error;
    }
  }

  /** The port of the master the sentinels currently name. */
  async masterPort(): Promise<number> {
    const client = new Redis({ port: this.sentinels[0]!.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    try {
      const [, port] = (await client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name)) as [
        string,
        string,
      ];
      return Number(port);
    } finally {
      client.disconnect();
    }
  }

  server(port: number): RedisServer {
    return this.servers.find((server) => server.port === port)!;
  }

  /** An ioredis client that finds the master through the sentinels and follows a failover. */
  client(): Redis {
    const client = new Redis({
      sentinels: this.sentinels.map((sentinel) => ({ host: '127.0.0.1', port: sentinel.port })),
      name: this.name,
      maxRetriesPerRequest: null,
      sentinelRetryStrategy: () => 100,
      retryStrategy: () => 100,
      connectTimeout: 1_000,
    });
    client.on('error', () => {});
    return client;
  }

  async stop(): Promise<void> {
    await Promise.all(this.sentinels.map((sentinel) => sentinel.kill()));
    await Promise.all(this.servers.map((server) => server.stop()));
    await rm(this.dir, { recursive: true, force: true });
  }
}
