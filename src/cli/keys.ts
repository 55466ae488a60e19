/**
 * `dinhdanh keys ...`: signing keys (staged -> active -> retired -> removed, or revoked), cookie-key generations and
 * the master key. Every change is an audited operator act: the change and its `key.*` event commit together.
 */
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { type Command, Option } from 'commander';
import type { Kysely, Transaction } from 'kysely';
import { rewrapTotpSecrets } from '../accounts/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import {
  activateKey,
  generateKey,
  listKeys,
  loadKeyMaterial,
  loadMasterKey,
  retireKey,
  revokeKey,
  rewrapKeys,
  rewrapSecrets,
  rotateCookieKeys,
  rotateKey,
  SIGNING_ALGS,
} from '../keys/index.ts';
import { type Act, audited } from './audited.ts';
import { type GetConfig, operatorOf, print, withDatabase } from './shared.ts';

/** Adds the `keys` commands to the program. */
export function keysCommands(cli: Command, getConfig: GetConfig): void {
  const keys = cli.command('keys').description('signing keys: staged -> active -> retired -> removed, or revoked');
  /** Runs a `key.<action>` act by the operator of `o`, and its event, in one transaction. */
  const keyAct = <T>(
    db: Kysely<DB>,
    o: { operator?: string },
    action: string,
    act: (trx: Transaction<DB>) => Promise<Act<T>>,
  ) => audited(db, { type: 'operator', id: operatorOf(o) }, `key.${action}`, act);
  const algOption = () => new Option('--alg <alg>', 'signature algorithm').choices([...SIGNING_ALGS]).default('ES256');
  keys
    .command('list')
    .description('every key with its state and times')
    .action(async () => {
      await withDatabase(getConfig(), async ({ db }) => print(await listKeys(db)));
    });
  keys
    .command('export-public')
    .description('the published JWKS (staged, active and retired public keys)')
    .action(async () => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => print((await loadKeyMaterial(db, loadMasterKey(config))).jwks));
    });
  keys
    .command('generate')
    .description('stage a new key: published now, signs only once activated')
    .addOption(algOption())
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => {
        const kid = await keyAct(db, o, 'generated', async (trx) => {
          const kid = await generateKey(trx, loadMasterKey(config), o.alg, operatorOf(o));
          return { result: kid, details: { kid, alg: o.alg } };
        });
        print({
          kid,
          alg: o.alg,
          state: 'staged',
          activatableFrom: new Date(Date.now() + config.keys.leadSeconds * 1000).toISOString(),
        });
      });
    });
  keys
    .command('activate <kid>')
    .description('make a staged key (published for at least the lead time) the signing key of its algorithm')
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (kid, o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => {
        const r = await keyAct(db, o, 'activated', async (trx) => {
          const r = await activateKey(trx, kid, config.keys);
          return { result: r, details: { kid, ...r } };
        });
        print({ kid, state: 'active', ...r });
      });
    });
  keys
    .command('retire <kid>')
    .description('retire an active key; a staged key past its lead time takes over')
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (kid, o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => {
        const r = await keyAct(db, o, 'retired', async (trx) => {
          const r = await retireKey(trx, kid, config.keys);
          return { result: r, details: { kid, ...r } };
        });
        print({ kid, state: 'retired', ...r });
      });
    });
  keys
    .command('revoke <kid>')
    .description(
      'key compromise: remove from JWKS at once; its tokens stop verifying (put -- before a KID that starts with -)',
    )
    .option('--yes', 'do not ask for confirmation')
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (kid, o) => {
      const config = getConfig();
      if (!o.yes) {
        if (!process.stdin.isTTY) throw new AppError('invalid_input', 'revoke needs --yes when not run on a terminal');
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        const answer = await rl.question(`Revoke ${kid}? Tokens it signed stop verifying at once. Type "revoke": `);
        rl.close();
        if (answer.trim() !== 'revoke') throw new AppError('invalid_input', 'not revoked');
      }
      await withDatabase(config, async ({ db }) => {
        const r = await keyAct(db, o, 'revoked', async (trx) => {
          const r = await revokeKey(trx, loadMasterKey(config), kid, operatorOf(o));
          return { result: r, details: { kid, ...r } };
        });
        print({ kid, state: 'revoked', ...r });
      });
    });
  keys
    .command('rotate')
    .description('stage a new key that activates itself after the lead time (at once when it is 0)')
    .addOption(algOption())
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => {
        const r = await keyAct(db, o, 'rotated', async (trx) => {
          const r = await rotateKey(trx, loadMasterKey(config), o.alg, config.keys, operatorOf(o));
          return { result: r, details: { alg: o.alg, ...r } };
        });
        print({ ...r, activatesAt: r.activatesAt.toISOString() });
      });
    });
  keys
    .command('rotate-cookies')
    .description('start a new cookie-key generation: new cookies are signed with it, the previous one still verifies')
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      if (config.cookieKeys)
        throw new AppError('invalid_input', 'COOKIE_KEYS is set: rotate by putting a new key first in it');
      await withDatabase(config, async ({ db }) => {
        const generation = await keyAct(db, o, 'cookies_rotated', async (trx) => {
          const generation = await rotateCookieKeys(trx, loadMasterKey(config));
          return { result: generation, details: { generation } };
        });
        print({ generation });
      });
    });
  keys
    .command('rewrap')
    .description('re-encrypt every private key, TOTP secret and service secret under a new master key')
    .requiredOption('--new-master-key-file <file>', 'file with the new key (32 bytes, base64); created 0600 if missing')
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      const from = loadMasterKey(config);
      const to = loadMasterKey({
        ...config,
        masterKey: null,
        masterKeyFile: path.resolve(o.newMasterKeyFile),
        env: 'development',
      });
      if (from.equals(to)) throw new AppError('invalid_input', 'the new master key is the same as the current one');
      await withDatabase(config, async ({ db }) => {
        const counts = await keyAct(db, o, 'rewrapped', async (trx) => {
          const counts = {
            signingKeys: await rewrapKeys(trx, from, to),
            totpSecrets: await rewrapTotpSecrets(trx, from, to),
            serviceSecrets: await rewrapSecrets(trx, from, to),
          };
          return { result: counts, details: counts };
        });
        print({
          ...counts,
          next: `set MASTER_KEY_FILE=${path.resolve(o.newMasterKeyFile)} on every node and restart them`,
        });
      });
    });
}
