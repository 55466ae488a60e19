/**
 * `dinhdanh clients add|list|update|rotate-secret|disable|enable|approve`: relying portals. Each change is a staff act
 * (admin/acts.ts, shared with the admin API): the act and its audit event commit together.
 */
import { readFileSync, statSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { approveClient, changeClient, disableClient, registerClient, rotateSecret } from '../admin/acts.ts';
import type { Actor } from '../audit/index.ts';
import { AUTH_METHODS, listClients, MAX_GRACE_SECONDS } from '../clients/index.ts';
import { AppError } from '../errors.ts';
import { SIGNING_ALGS } from '../keys/index.ts';
import { ADMIN_SCOPES } from '../staff/index.ts';
import { actDeps, collect, type GetConfig, operatorOf, print, withDatabase } from './shared.ts';

/** Adds `clients add`, `list`, `update` and `rotate-secret` to the program. */
export function clientsCommands(cli: Command, getConfig: GetConfig): void {
  /** The operator of `o`, acting from the host's command line. */
  const operator = (o: { operator?: string }): Actor => ({ type: 'operator', id: operatorOf(o), via: 'cli' });
  const clients = cli.command('clients').description('relying portals');
  clients
    .command('add')
    .description('register a portal; prints it as JSON with its secret (shown once)')
    .requiredOption('--name <name>', 'display name shown to citizens')
    .option('--redirect-uri <uri>', 'redirect URI (repeatable)', collect, [])
    .option('--post-logout-redirect-uri <uri>', 'post-logout redirect URI (repeatable)', collect, [])
    .option('--backchannel-logout-uri <uri>', 'back-channel logout URI')
    .option('--client-id <id>', 'choose the client_id (default: generated)')
    .addOption(
      new Option('--auth-method <method>', 'token endpoint authentication')
        .choices(AUTH_METHODS)
        .default('client_secret_basic'),
    )
    .option('--jwks <file>', "a JWK Set file with the portal's public keys (EC P-256, RSA >= 2048; each with a kid)")
    .option(
      '--jwks-uri <url>',
      'where the portal publishes its public keys (https; http on localhost outside production)',
    )
    .option(
      '--scopes <list>',
      'scopes the portal may receive, space or comma separated (default: profile address email phone offline_access)',
    )
    .option('--client-credentials', 'a back-end service: client_credentials only (no citizen, no redirect URI)')
    .option('--resource <uri>', 'an API (from RESOURCE_SERVERS) it may get access tokens for (repeatable)', collect, [])
    .option(
      '--resource-server <uri>',
      'the API (from RESOURCE_SERVERS) this back-end is: it may introspect and revoke tokens issued for it',
    )
    .option(
      '--allow-personal-id',
      'permit the national_id scope (the 12-digit personal ID); portals entitled by law only',
    )
    .addOption(new Option('--min-level <level>', 'lowest assurance level accepted').choices(['1', '2']).default('1'))
    .addOption(
      new Option('--subject-type <type>', 'sub per sector (pairwise) or one for all (public)')
        .choices(['pairwise', 'public'])
        .default('pairwise'),
    )
    .addOption(
      new Option('--id-token-alg <alg>', 'ID token signature algorithm').choices([...SIGNING_ALGS]).default('ES256'),
    )
    .option(
      '--require-phishing-resistant',
      'accept only a phishing-resistant sign-in (a level-2 passkey; the PHISHING_RESISTANT_ACR value)',
    )
    .addOption(
      new Option('--consent <mode>', 'implicit: pre-consented by law (no page, still recorded)')
        .choices(['explicit', 'implicit'])
        .default('explicit'),
    )
    .addOption(
      new Option(
        '--profile <profile>',
        'fapi2: the FAPI 2.0 Security Profile (PAR, PKCE, private_key_jwt, DPoP, ES256/PS256); needs private_key_jwt',
      ).choices(['fapi2']),
    )
    .option('--agency <code>', 'the agency it belongs to (its agency admins manage it), e.g. bo-tai-chinh')
    .option('--sandbox', 'register it in the sandbox: only test citizens may sign in (approval moves it to production)')
    .addOption(
      new Option('--admin-scope <scope>', 'a back-end service calling the admin API: a scope it may get (repeatable)')
        .choices([...ADMIN_SCOPES])
        .argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]),
    )
    .option('--operator <name>', 'who is registering (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      const jwks = o.jwks === undefined ? undefined : readJwks(o.jwks);
      await withDatabase(config, async ({ db }) => {
        const client = await registerClient(actDeps(config, db), operator(o), {
          name: o.name,
          redirectUris: o.redirectUri,
          postLogoutRedirectUris: o.postLogoutRedirectUri,
          backchannelLogoutUri: o.backchannelLogoutUri,
          tokenEndpointAuthMethod: o.authMethod,
          clientId: o.clientId,
          scopes: o.scopes
            ? String(o.scopes)
                .split(/[\s,]+/)
                .filter(Boolean)
            : undefined,
          allowPersonalId: !!o.allowPersonalId,
          minLevel: Number(o.minLevel) as 1 | 2,
          phishingResistant: !!o.requirePhishingResistant,
          subjectType: o.subjectType,
          consent: o.consent,
          idTokenAlg: o.idTokenAlg,
          clientCredentials: !!o.clientCredentials,
          resources: o.resource,
          resourceServer: o.resourceServer,
          profile: o.profile,
          jwks,
          jwksUri: o.jwksUri,
          agency: o.agency,
          environment: o.sandbox ? 'sandbox' : undefined,
          adminScopes: o.adminScope,
        });
        print(client);
      });
    });
  clients
    .command('list')
    .description('list registered portals (no secrets)')
    .action(async () => {
      await withDatabase(getConfig(), async ({ db }) => print(await listClients(db)));
    });
  clients
    .command('update')
    .description('change a registered portal (same checks as add); prints it as JSON; running nodes see it at once')
    .argument('<client-id>', 'the portal to change')
    .option('--name <name>', 'display name shown to citizens')
    .option('--redirect-uri <uri>', 'redirect URI (repeatable; replaces the list)', collectNew)
    .option('--post-logout-redirect-uri <uri>', 'post-logout redirect URI (repeatable; replaces the list)', collectNew)
    .option('--backchannel-logout-uri <uri>', 'back-channel logout URI')
    .option('--no-backchannel-logout-uri', 'remove the back-channel logout URI')
    .addOption(new Option('--auth-method <method>', 'token endpoint authentication').choices(AUTH_METHODS))
    .option('--jwks <file>', "a JWK Set file with the portal's public keys (replaces its keys or jwks_uri)")
    .option('--jwks-uri <url>', 'where the portal publishes its public keys (replaces its keys or jwks_uri)')
    .option('--scopes <list>', 'scopes the portal may receive, space or comma separated (replaces the list)')
    .option('--allow-personal-id', 'permit the national_id scope (portals entitled by law only)')
    .addOption(new Option('--min-level <level>', 'lowest assurance level accepted').choices(['1', '2']))
    .option('--require-phishing-resistant', 'accept only a phishing-resistant sign-in (a level-2 passkey)')
    .option('--no-require-phishing-resistant', 'accept any sign-in that meets the minimum level again')
    .option('--operator <name>', 'who is changing it (default: the OS user)')
    .action(async (clientId: string, o) => {
      const config = getConfig();
      const jwks = o.jwks === undefined ? undefined : readJwks(o.jwks);
      await withDatabase(config, async ({ db }) => {
        const updated = await changeClient(actDeps(config, db), operator(o), clientId, {
          name: o.name,
          redirectUris: o.redirectUri,
          postLogoutRedirectUris: o.postLogoutRedirectUri,
          // commander: a string when given, false with --no-backchannel-logout-uri, undefined when neither
          backchannelLogoutUri:
            typeof o.backchannelLogoutUri === 'string'
              ? o.backchannelLogoutUri
              : o.backchannelLogoutUri === false
                ? null
                : undefined,
          tokenEndpointAuthMethod: o.authMethod,
          jwks,
          jwksUri: o.jwksUri,
          scopes: o.scopes === undefined ? undefined : splitList(o.scopes),
          allowPersonalId: o.allowPersonalId ? true : undefined,
          minLevel: o.minLevel === undefined ? undefined : (Number(o.minLevel) as 1 | 2),
          // commander: true with --require-phishing-resistant, false with --no-…, undefined when neither
          phishingResistant: o.requirePhishingResistant,
        });
        print(updated);
      });
    });
  clients
    .command('rotate-secret')
    .description(
      'give a portal a new secret (printed once); the current one keeps working for the grace period, then stops',
    )
    .argument('<client-id>', 'the portal')
    .option(
      '--grace <seconds>',
      `how long the current secret keeps working (0: stops at once; at most ${MAX_GRACE_SECONDS})`,
      '86400',
    )
    .option('--operator <name>', 'who is rotating it (default: the OS user)')
    .action(async (clientId: string, o) => {
      if (!/^\d+$/.test(o.grace)) throw new AppError('invalid_input', '--grace must be a whole number of seconds');
      const config = getConfig();
      await withDatabase(config, async ({ db }) => {
        const rotated = await rotateSecret(actDeps(config, db), operator(o), clientId, Number(o.grace));
        print(rotated);
      });
    });
  for (const [name, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const)
    clients
      .command(name)
      .description(
        disabled
          ? 'disable a portal: every request of it fails as for an unknown client, on every node at once'
          : 'enable a disabled portal',
      )
      .argument('<client-id>', 'the portal')
      .option('--operator <name>', 'who (default: the OS user)')
      .action(async (clientId: string, o) => {
        const config = getConfig();
        await withDatabase(config, async ({ db }) =>
          print(await disableClient(actDeps(config, db), operator(o), clientId, disabled)),
        );
      });
  clients
    .command('approve')
    .description('security staff: move a sandbox portal to production (or back with --sandbox), with the reason')
    .argument('<client-id>', 'the portal')
    .requiredOption('--reason <text>', 'why (recorded in the audit trail)')
    .option('--sandbox', 'move it back to the sandbox instead')
    .option('--operator <name>', 'who (default: the OS user)')
    .action(async (clientId: string, o) => {
      const config = getConfig();
      const to = o.sandbox ? 'sandbox' : 'production';
      await withDatabase(config, async ({ db }) =>
        print(await approveClient(actDeps(config, db), operator(o), clientId, to, o.reason)),
      );
    });
}

/** Commander reducer for a repeatable option without a default (undefined: not given, so left unchanged). */
const collectNew = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** A space or comma separated list. */
const splitList = (value: string) => value.split(/[\s,]+/).filter(Boolean);

/** A JWK Set file, parsed; one line when it cannot be read or is not JSON (its keys are checked by the service). */
function readJwks(file: string): unknown {
  try {
    if (statSync(file).size > 65_536) throw new AppError('invalid_input', `--jwks ${file}: larger than 64 KiB`);
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    if (err instanceof AppError) throw err;
    const why =
      err instanceof SyntaxError ? 'not a JSON document' : ((err as NodeJS.ErrnoException).code ?? 'unreadable');
    throw new AppError('invalid_input', `--jwks ${file}: ${why}`);
  }
}
