/**
 * Who may introspect or revoke a token. Threat: oidc-provider's default lets any authenticated client introspect any
 * token, so one portal could read another portal's tokens (its pairwise `sub`, `sid` and scope), defeating pairwise
 * separation, or revoke them. Here only the client the token was issued to, or the API it was issued for (a client
 * registered with `--resource-server` for that indicator), may; everyone else is answered as for an unknown token.
 */
import type { Client, KoaContextWithOIDC } from 'oidc-provider';

interface TokenLike {
  clientId?: string;
  aud?: string | string[];
}

/** The `allowedPolicy` of introspection and revocation. */
export async function mayInspectToken(_ctx: KoaContextWithOIDC, client: Client, token: unknown): Promise<boolean> {
  const t = token as TokenLike;
  if (t.clientId === client.clientId) return true;
  const api = client.metadata().dinhdanh_resource_server;
  if (typeof api !== 'string') return false;
  const audience = Array.isArray(t.aud) ? t.aud : t.aud ? [t.aud] : [];
  return audience.includes(api);
}
