/**
 * `npm run demo`: dinhdanh and two agency portals on this machine, to try single sign-on, level 2 and logout.
 *
 *   http://localhost:3000  dinhdanh (embedded PostgreSQL, data in .data/demo unless DATA_DIR is set)
 *   http://localhost:3001  "Cổng Dịch vụ công quốc gia"  (client demo-public-service, level 1)
 *   http://localhost:3002  "Cổng Đăng ký đất đai"        (client demo-land-registry, level 2 required)
 *
 * Other ports: `npm run demo -- --port 4000 --portal-port 4001` (or DEMO_PORT, DEMO_PORTAL_PORT): dinhdanh on the
 * first, the two portals on the second and the one after it.
 *
 * Idempotent: portals are registered once with fixed client ids (with the port appended when it is not the default,
 * since the registered redirect URI names the port); their secrets (printed once by the CLI) and the level-2
 * citizen's TOTP secret are kept in DATA_DIR/demo-secrets.json (0600). A portal registered without a saved secret
 * cannot be recovered: delete DATA_DIR to start over. Ctrl-C stops everything.
 *
 * `npm run demo -- totp` prints the level-2 citizen's current TOTP code (instead of an authenticator app).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { accountIdForPin, confirmTotp, redeemActivationCode, startTotpEnrollment } from '../src/accounts/index.ts';
import { recordEvent } from '../src/audit/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { currentTotp, totpUri } from '../src/credentials/index.ts';
import { openDatabase } from '../src/db/index.ts';
import { loadMasterKey } from '../src/keys/index.ts';

const root = path.resolve(import.meta.dirname, '..');
const dataDir = path.resolve(root, process.env.DATA_DIR ?? '.data/demo');
const stateFile = path.join(dataDir, 'demo-secrets.json');

const USAGE = 'usage: npm run demo [-- --port 3000 --portal-port 3001]   |   npm run demo -- totp';

/** The command line: ports (options win over DEMO_PORT and DEMO_PORTAL_PORT) and the `totp` command. */
function readArgs() {
  try {
    return parseArgs({
      options: {
        /** dinhdanh's port (DEMO_PORT, default 3000). */
        port: { type: 'string', default: process.env.DEMO_PORT || '3000' },
        /** The level-1 portal's port; the level-2 portal takes the next one (DEMO_PORTAL_PORT, default 3001). */
        'portal-port': { type: 'string', default: process.env.DEMO_PORTAL_PORT || '3001' },
      },
      allowPositionals: true,
    });
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(1);
  }
}
const args = readArgs();

/** A TCP port from an option; anything else stops the demo before it starts. */
function portOf(name: string, value: string, last = 65535): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 1 || port > last) {
    process.stderr.write(`demo: --${name} must be a port number (1-${last}), not ${JSON.stringify(value)}\n`);
    process.exit(1);
  }
  return port;
}
const ISSUER_PORT = portOf('port', args.values.port);
const PORTAL_PORT = portOf('portal-port', args.values['portal-port'], 65534);
if ([PORTAL_PORT, PORTAL_PORT + 1].includes(ISSUER_PORT)) {
  process.stderr.write(
    `demo: --port ${ISSUER_PORT} is taken by a portal (--portal-port ${PORTAL_PORT} and the next)\n`,
  );
  process.exit(1);
}
const issuer = `http://localhost:${ISSUER_PORT}`;

/** A portal's client id: the registered redirect URI names its port, so another port is another registration. */
const clientIdFor = (base: string, port: number, defaultPort: number) =>
  port === defaultPort ? base : `${base}-${port}`;

/** The demo's portals. */
const PORTALS = [
  {
    clientId: clientIdFor('demo-public-service', PORTAL_PORT, 3001),
    name: 'Cổng Dịch vụ công quốc gia',
    port: PORTAL_PORT,
    minLevel: 1,
  },
  {
    clientId: clientIdFor('demo-land-registry', PORTAL_PORT + 1, 3002),
    name: 'Cổng Đăng ký đất đai',
    port: PORTAL_PORT + 1,
    minLevel: 2,
  },
] as const;

/** Citizens to try (the level-1 one is seeded by dinhdanh; the level-2 one is made here). */
const LEVEL1 = { pin: '001090012345', password: 'demo-password-2026' };
const LEVEL2 = {
  pin: '079195004321',
  fullName: 'Trần Thị Bích Ngọc',
  birthDate: '1995-11-03',
  password: 'ngoc-demo-2026',
};

interface DemoState {
  clients: Record<string, string>;
  totpSecret?: string;
}

/** Environment of the dinhdanh process and CLI commands: its own data folder and master key. */
const env: NodeJS.ProcessEnv = {
  ...process.env,
  DATA_DIR: dataDir,
  PORT: String(ISSUER_PORT),
  ISSUER: issuer,
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  // No load balancer in front of the demo: stop at once on Ctrl-C (in-flight requests still finish).
  SHUTDOWN_GRACE_SECONDS: process.env.SHUTDOWN_GRACE_SECONDS ?? '0',
  ...(process.env.MASTER_KEY || process.env.MASTER_KEY_FILE
    ? {}
    : { MASTER_KEY_FILE: path.join(dataDir, 'master.key') }),
};

function readState(): DemoState {
  if (!existsSync(stateFile)) return { clients: {} };
  return JSON.parse(readFileSync(stateFile, 'utf8')) as DemoState;
}

function writeState(state: DemoState): void {
  writeFileSync(stateFile, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  chmodSync(stateFile, 0o600);
}

/** Runs a dinhdanh command; returns stdout, throws with its message on failure. */
function cli(args: string[], input?: string): string {
  const r = spawnSync(process.execPath, ['src/cli/main.ts', ...args], { cwd: root, env, input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dinhdanh ${args.slice(0, 2).join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

const children: ChildProcess[] = [];

/** Starts a child and resolves when its output matches `ready`; rejects if it exits first. */
function startChild(label: string, args: string[], childEnv: NodeJS.ProcessEnv, ready: RegExp): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { cwd: root, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d;
      for (const line of d.toString().split('\n').filter(Boolean)) process.stdout.write(`[${label}] ${line}\n`);
      if (ready.test(out)) resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${label} exited (${code}) before it was ready`)));
  });
}

/** Registers each portal once; reuses the saved secret afterwards. */
function registerPortals(state: DemoState): void {
  const registered = new Set((JSON.parse(cli(['clients', 'list'])) as { client_id: string }[]).map((c) => c.client_id));
  for (const p of PORTALS) {
    if (registered.has(p.clientId)) {
      if (!state.clients[p.clientId])
        throw new Error(
          `portal ${p.clientId} is registered but its secret is not in ${stateFile}; delete ${dataDir} to start over`,
        );
      continue;
    }
    const base = `http://localhost:${p.port}`;
    const client = JSON.parse(
      cli([
        'clients',
        'add',
        '--client-id',
        p.clientId,
        '--name',
        p.name,
        '--redirect-uri',
        `${base}/callback`,
        '--post-logout-redirect-uri',
        `${base}/`,
        '--backchannel-logout-uri',
        `${base}/backchannel-logout`,
        '--scopes',
        'openid profile',
        '--min-level',
        String(p.minLevel),
        '--operator',
        'demo',
      ]),
    ) as { client_secret: string };
    state.clients[p.clientId] = client.client_secret;
    writeState(state);
    process.stdout.write(`registered ${p.clientId} (${p.name})\n`);
  }
}

/**
 * The level-2 citizen: enrolled at level 1 and verified in person through the CLI (as an officer would); the
 * activation and TOTP enrollment a citizen does on /account are done here directly, and the secret is kept.
 */
async function ensureLevel2Citizen(state: DemoState): Promise<void> {
  const show = () => {
    const r = spawnSync(process.execPath, ['src/cli/main.ts', 'accounts', 'show', '--personal-id', LEVEL2.pin], {
      cwd: root,
      env,
      encoding: 'utf8',
    });
    return r.status === 0 ? (JSON.parse(r.stdout) as { level: number; totp: boolean }) : undefined;
  };
  let account = show();
  if (!account) {
    cli(
      [
        'accounts',
        'enroll',
        '--personal-id',
        LEVEL2.pin,
        '--full-name',
        LEVEL2.fullName,
        '--birthdate',
        LEVEL2.birthDate,
        '--officer',
        'DEMO',
        '--password-stdin',
      ],
      `${LEVEL2.password}\n`,
    );
    account = show();
    if (!account) throw new Error('could not enroll the level-2 demo citizen');
  }
  if (account.level >= 2 && state.totpSecret) return;
  if (account.totp) cli(['accounts', 'reset-totp', '--personal-id', LEVEL2.pin, '--operator', 'demo']);
  const { activation_code } = JSON.parse(
    cli(['accounts', 'verify-in-person', '--personal-id', LEVEL2.pin, '--officer', 'DEMO']),
  ) as { activation_code: string };

  const config = loadConfig(env);
  const master = loadMasterKey(config);
  const database = await openDatabase(config);
  try {
    const { db } = database;
    const accountId = await accountIdForPin(db, LEVEL2.pin);
    // The setup acts as one session holding the fresh in-person check.
    const who = { sessionUid: 'demo-setup', level2Session: false, validMs: 60_000 };
    if (!(await redeemActivationCode(db, accountId, activation_code, who.sessionUid)))
      throw new Error('activation code refused');
    const secret = await startTotpEnrollment(db, master, accountId, who);
    // Confirm with the previous step's code, so the current code is still usable for the first login.
    const previous = (Math.floor(Date.now() / 30_000) - 1) * 30;
    if (!(await confirmTotp(db, master, accountId, await currentTotp(secret, previous), who)))
      throw new Error('TOTP confirmation refused');
    for (const action of ['activation', 'totp.enrolled']) {
      await recordEvent(db, {
        actor: { type: 'citizen', id: accountId },
        action,
        outcome: 'success',
        subject: accountId,
        details: { channel: 'demo' },
      });
    }
    state.totpSecret = secret;
    writeState(state);
    process.stdout.write(`level-2 demo citizen ready (${LEVEL2.pin})\n`);
  } finally {
    await database.close();
  }
}

/**
 * Stops every child. After Ctrl-C the children got SIGINT from the terminal themselves: give them time to finish
 * (signalling twice would close the service twice), then SIGTERM what is left, then SIGKILL.
 */
async function stopAll(code: number, graceMs = 0): Promise<never> {
  const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;
  const waitExit = (c: ChildProcess, ms: number) =>
    new Promise<void>((resolve) => {
      if (exited(c)) return resolve();
      const timer = setTimeout(resolve, ms);
      c.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  await Promise.all(
    children.map(async (c) => {
      if (graceMs) await waitExit(c, graceMs);
      if (!exited(c)) c.kill('SIGTERM');
      await waitExit(c, 10_000);
      if (!exited(c)) c.kill('SIGKILL');
    }),
  );
  process.exit(code);
}

async function main(): Promise<void> {
  // dinhdanh creates DATA_DIR itself (with the modes its embedded PostgreSQL needs); the secrets file goes in it.
  let stopping = false;
  const stop = (code: number, graceMs = 0) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping...\n');
    void stopAll(code, graceMs);
  };
  process.once('SIGINT', () => stop(0, 5000)).once('SIGTERM', () => stop(0));

  await startChild('dinhdanh', ['src/cli/main.ts', 'start'], env, /listening on/);
  const state = readState();
  registerPortals(state);
  await ensureLevel2Citizen(state);

  for (const p of PORTALS) {
    const child = await startChild(
      p.clientId,
      ['examples/portal/main.ts'],
      {
        ...process.env,
        PORTAL_NAME: p.name,
        PORT: String(p.port),
        PORTAL_URL: `http://localhost:${p.port}`,
        ISSUER: issuer,
        CLIENT_ID: p.clientId,
        CLIENT_SECRET: state.clients[p.clientId],
        MIN_LEVEL: String(p.minLevel),
      },
      /listening on/,
    );
    child.once('exit', () => stop(1));
  }
  children[0]!.once('exit', () => stop(1));

  const secret = state.totpSecret!;
  const [publicService, landRegistry] = PORTALS;
  process.stdout.write(`
dinhdanh demo is running (Ctrl-C stops everything)

  dinhdanh (provider):            ${issuer}   citizen account page: ${issuer}/account
  ${publicService.name}:     http://localhost:${publicService.port}   (level 1)
  ${landRegistry.name}:           http://localhost:${landRegistry.port}   (level 2 required)

  Level 1 citizen:  personal ID ${LEVEL1.pin}, password ${LEVEL1.password}
                    (refused at the land registry: unmet_authentication_requirements)
  Level 2 citizen:  personal ID ${LEVEL2.pin}, password ${LEVEL2.password}, then a TOTP code
                    authenticator key: ${secret}
                    otpauth URI: ${totpUri(secret, LEVEL2.pin, 'dinhdanh demo')}
                    or print the current code: npm run demo -- totp

  Try: sign in on :${publicService.port}, open :${landRegistry.port} (single sign-on, a TOTP step-up for level 2), sign out on
  one portal and reload the other: the provider's back-channel logout has ended its session too.
  Secrets of this demo: ${stateFile}
`);
}

if (args.positionals[0] === 'totp') {
  const { totpSecret } = readState();
  if (!totpSecret) {
    process.stderr.write('no level-2 demo citizen yet: run `npm run demo` first\n');
    process.exit(1);
  }
  const seconds = 30 - (Math.floor(Date.now() / 1000) % 30);
  process.stdout.write(`${await currentTotp(totpSecret)}  (valid for ${seconds} more seconds, each code once)\n`);
} else {
  main().catch((err) => {
    process.stderr.write(`demo: ${(err as Error).message}\n`);
    void stopAll(1);
  });
}
