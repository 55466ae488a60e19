/**
 * The admin API's OpenAPI 3.1 document, generated from OPERATIONS: the same zod schemas that validate each request
 * (zod's JSON Schema output is draft 2020-12, the dialect OpenAPI 3.1 uses). Served at /admin/api/openapi.json.
 */
import Router from '@koa/router';
import { z } from 'zod';
import { ADMIN_SCOPES, CAPABILITIES } from '../staff/index.ts';
import { API_PREFIX, OPERATIONS, type Operation } from './api.ts';

const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details' });

type Schema = Record<string, unknown>;

/** JSON Schema of a zod schema as OpenAPI 3.1 embeds it (named schemas become components). */
function schemaOf(s: z.ZodType, io: 'input' | 'output', components: Record<string, Schema>): Schema {
  const generated = z.toJSONSchema(s, { io, target: 'draft-2020-12', unrepresentable: 'any' });
  // Named schemas nested inside come out as local $defs: they are the document's components.
  const out = JSON.parse(JSON.stringify(generated).replaceAll('"#/$defs/', '"#/components/schemas/')) as Schema & {
    $defs?: Record<string, Schema>;
  };
  const { $schema: _, $defs, ...schema } = out;
  for (const [id, def] of Object.entries($defs ?? {})) components[id] = def;
  // A named schema at the top becomes a component and a reference.
  const id = (z.globalRegistry.get(s) as { id?: string } | undefined)?.id;
  if (id) {
    components[id] = schema;
    return { $ref: `#/components/schemas/${id}` };
  }
  return schema;
}

const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

/** Path and query parameters of an operation. */
function parametersOf(o: Operation, components: Record<string, Schema>) {
  const out: Schema[] = [];
  for (const [where, shape] of [
    ['path', o.params],
    ['query', o.query],
  ] as const) {
    if (!shape) continue;
    for (const [name, field] of Object.entries(shape.shape as Record<string, z.ZodType>)) {
      const optional = field.safeParse(undefined).success;
      out.push({
        name,
        in: where,
        required: where === 'path' || !optional,
        schema: schemaOf(field, 'input', components),
      });
    }
  }
  return out;
}

/** The document, for an issuer. */
export function openApiDocument(issuer: string): Schema {
  const components: Record<string, Schema> = {};
  components.Problem = schemaOf(Problem, 'output', components);
  const paths: Record<string, Record<string, Schema>> = {};
  for (const o of OPERATIONS) {
    const rule = CAPABILITIES[o.capability];
    const ok = String(o.status ?? 200);
    const responseContent = o.ndjson
      ? { 'application/x-ndjson': { schema: { type: 'string' } } }
      : { 'application/json': { schema: schemaOf(o.response, 'output', components) } };
    paths[o.path] ??= {};
    paths[o.path]![o.method] = {
      operationId: o.operationId,
      summary: o.summary,
      tags: [o.tag],
      description: `Needs ${o.capability}: staff roles ${rule.roles.join(', ')}${
        rule.scope ? `; machine callers the scope ${rule.scope}` : '; people only'
      }.`,
      security: rule.scope ? [{ oauth2: [rule.scope] }] : [],
      parameters: parametersOf(o, components),
      ...(o.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: schemaOf(o.body, 'input', components) } },
            },
          }
        : {}),
      responses: {
        [ok]: { description: 'Done', content: responseContent },
        '400': problemResponse('The request is malformed (the detail names the field)'),
        '401': problemResponse('No valid access token for the admin API'),
        '403': problemResponse('The caller may not do this (the attempt is audited)'),
        '404': problemResponse('No such resource'),
        '409': problemResponse('The resource is not in a state that allows this'),
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'dinhdanh admin API',
      version: '1',
      description:
        'Staff operations of the dinhdanh identity provider. Every change is audited with the caller, its role or scope, and its IP.',
    },
    servers: [{ url: `${issuer}${API_PREFIX}` }],
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        oauth2: {
          type: 'oauth2',
          description: `client_credentials with resource=${issuer}/admin/api, for back-end services registered with admin scopes`,
          flows: {
            clientCredentials: {
              tokenUrl: `${issuer}/token`,
              scopes: Object.fromEntries(ADMIN_SCOPES.map((s) => [s, `the ${s.slice(6)} operations`])),
            },
          },
        },
      },
    },
  };
}

/** Serves the document. */
export function openApiRoutes(issuer: string): Router {
  const router = new Router();
  let doc: string | undefined;
  router.get('/admin/api/openapi.json', (ctx) => {
    doc ??= JSON.stringify(openApiDocument(issuer));
    ctx.set('cache-control', 'public, max-age=300');
    ctx.type = 'application/json';
    ctx.body = doc;
  });
  return router;
}
