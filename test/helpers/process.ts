/** Runs `dinhdanh start` as a separate process and waits until it listens. */

import assert from 'node:assert/strict';
import { type ChildProcess, type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

/** Runs `dinhdanh ...args` with `env` added to this process's environment; the result is not checked. */
export function runCli(env: Record<string, string>, ...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['src/cli/main.ts', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
}

/** Runs `dinhdanh ...args`, asserts it succeeded and returns its JSON output. */
export function cliJson(env: Record<string, string>, ...args: string[]) {
  const r = runCli(env, ...args);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/**
 * Runs `dinhdanh ...args` without blocking this process: a test with a node in this same process must not use
 * `runCli` (while spawnSync waits, the node cannot finish a transaction the command may be waiting for).
 */
export function runCliAsync(
  env: Record<string, string>,
  ...args: string[]
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['src/cli/main.ts', ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Runs `dinhdanh ...args` without blocking this process, asserts it succeeded and returns its JSON output. */
export async function cliJsonAsync(env: Record<string, string>, ...args: string[]) {
  const r = await runCliAsync(env, ...args);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** A free loopback port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** A node started with `env`; `stop()` sends SIGTERM and waits for the exit. */
export interface NodeProcess {
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

export async function startNode(env: Record<string, string>, onOutput?: (chunk: string) => void): Promise<NodeProcess> {
  let out = '';
  const child = spawn(process.execPath, ['src/cli/main.ts', 'start'], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d) => {
    out += d;
    onOutput?.(String(d));
  });
  child.stderr?.on('data', (d) => {
    out += d;
    onOutput?.(String(d));
  });
  const t0 = Date.now();
  while (!/listening on/.test(out)) {
    if (child.exitCode !== null) throw new Error(`node exited:\n${out}`);
    if (Date.now() - t0 > 60_000) throw new Error(`node did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
