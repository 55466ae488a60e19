/**
 * `dinhdanh keys ...`: signing keys (staged -> active -> retired -> removed, or revoked), cookie-key generations and
 * the master key. Every change is an audited operator act: the change and its `key.*` event commit together.
 */
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { type Command, Option } from 'commander';
import { rewrapTotpSecrets } from '../accounts/index.ts';
import { activate, retire, revoke, rotate, rotateCookies, stageKey } from '../admin/acts.ts';
import { type Actor, audited } from '../audit/index.ts';
import { AppError } from '../errors.ts';
import { listKeys, loadKeyMaterial, loadMasterKey, rewrapKeys, rewrapSecrets, SIGNING_ALGS } from '../keys/index.ts';
import { actDeps, type GetConfig, operatorOf, print, withDatabase } from './shared.ts';

/** Adds the `keys` commands to the program. */
export function keysCommands(cli: Command, getConfig: GetConfig): void {
  /** The operator of `o`, acting from the host's command line. */
  const operator = (o: { operator?: string }): Actor => ({ type: 'operator', id: operatorOf(o), via: 'cli' });
  const keys = cli.command('keys').description('signing keys: staged -> active -> retired -> removed, or revoked');
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
      await withDatabase(config, async ({ db }) => print(await stageKey(actDeps(config, db), operator(o), o.alg)));
    });
  keys
    .command('activate <kid>')
    .description('make a staged key (published for at least the lead time) the signing key of its algorithm')
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (kid, o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => print(await activate(actDeps(config, db), operator(o), kid)));
    });
  keys
    .command('retire <kid>')
    .description('retire an active key; a staged key past its lead time takes over')
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (kid, o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => print(await retire(actDeps(config, db), operator(o), kid)));
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
      await withDatabase(config, async ({ db }) => print(await revoke(actDeps(config, db), operator(o), kid)));
    });
  keys
    .command('rotate')
    .description('stage a new key that activates itself after the lead time (at once when it is 0)')
    .addOption(algOption())
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) => print(await rotate(actDeps(config, db), operator(o), o.alg)));
    });
  keys
    .command('rotate-cookies')
    .description('start a new cookie-key generation: new cookies are signed with it, the previous one still verifies')
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      if (config.cookieKeys)
        throw new AppError('invalid_input', 'COOKIE_KEYS is set: rotate by putting a new key first in it');
      await withDatabase(config, async ({ db }) => print(await rotateCookies(actDeps(config, db), operator(o))));
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
        const counts = await audited(db, operator(o), 'key.rewrapped', async (trx) => {
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
