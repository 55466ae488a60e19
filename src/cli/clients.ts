/** `dinhdanh clients add|list`: relying portals. Registering one is an audited operator act. */
import { type Command, Option } from 'commander';
import { addClient, listClients } from '../clients/index.ts';
import { SIGNING_ALGS } from '../keys/index.ts';
import { audited } from './audited.ts';
import { collect, type GetConfig, operatorOf, print, withDatabase } from './shared.ts';

/** Adds `clients add` and `clients list` to the program. */
export function clientsCommands(cli: Command, getConfig: GetConfig): void {
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
        .choices(['client_secret_basic', 'client_secret_post', 'none'])
        .default('client_secret_basic'),
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
    .addOption(
      new Option('--consent <mode>', 'implicit: pre-consented by law (no page, still recorded)')
        .choices(['explicit', 'implicit'])
        .default('explicit'),
    )
    .option('--operator <name>', 'who is registering (default: the OS user)')
    .action(async (o) => {
      await withDatabase(getConfig(), async ({ db }) => {
        const actor = { type: 'operator' as const, id: operatorOf(o) };
        const client = await audited(db, actor, 'client.registered', async (trx) => {
          const client = await addClient(trx, {
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
            subjectType: o.subjectType,
            consent: o.consent,
            idTokenAlg: o.idTokenAlg,
            clientCredentials: !!o.clientCredentials,
            resources: o.resource,
            resourceServer: o.resourceServer,
          });
          return {
            result: client,
            clientId: client.client_id,
            details: { name: client.client_name, redirectUris: client.redirect_uris },
          };
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
}
