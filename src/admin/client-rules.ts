/**
 * What only security staff may decide about a portal, whoever else may edit it: receiving the personal ID
 * (`national_id`), pre-consent by law (implicit consent), production, and, once a portal is in production, where its
 * codes go and how it authenticates. Agency admins and machine callers may manage their portals' keys, names and
 * logout URIs, and narrow what they receive; anything else they ask for (console: "request a change").
 */
import type { ClientChanges, ClientView } from '../clients/index.ts';
import { AppError } from '../errors.ts';

const refuse = (what: string) =>
  new AppError('forbidden', `${what} needs security staff's approval (request the change, with a reason)`);

/** Refuses, for a caller who may not approve, a change that only security staff may make. */
export function checkChangeWithoutApproval(client: ClientView, changes: ClientChanges): void {
  const had = new Set(client.scope.split(' '));
  const asked = changes.scopes ? new Set(['openid', ...changes.scopes]) : had;
  if ((changes.allowPersonalId || asked.has('national_id')) && !had.has('national_id'))
    throw refuse('the national_id scope');
  if (client.environment !== 'production') return;
  const added = [...asked].filter((s) => !had.has(s));
  if (added.length) throw refuse(`a production portal's new scopes (${added.join(', ')})`);
  if (changes.redirectUris) throw refuse("a production portal's redirect URIs");
  if (changes.tokenEndpointAuthMethod && changes.tokenEndpointAuthMethod !== client.token_endpoint_auth_method)
    throw refuse("a production portal's authentication method");
  if (changes.minLevel !== undefined && changes.minLevel < client.min_level)
    throw refuse("a production portal's lower level");
}

/** Refuses, for a caller who may not approve, a registration that only security staff may make. */
export function checkRegistrationWithoutApproval(r: {
  scopes?: string[];
  consent?: string;
  environment?: string;
}): void {
  if (r.scopes?.includes('national_id')) throw refuse('the national_id scope');
  if (r.consent === 'implicit') throw refuse('implicit consent');
  if (r.environment === 'production') throw refuse('production');
}
