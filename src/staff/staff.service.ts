/**
 * Staff: which accounts hold which role, and what each role (or a machine caller's admin scope) may do. Roles are
 * granted by an admin (or, for the first one, `dinhdanh staff grant` on the host); the console and the admin API ask
 * `authorize` before every act, and the act itself is audited with the role it was done in (audit/audited.ts).
 */
import type { Kysely } from 'kysely';
import type { Actor } from '../audit/index.ts';
import type { DB } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { PROVINCES } from '../registry/index.ts';

export const ROLES = ['officer', 'security', 'agency_admin', 'auditor', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Scopes a machine caller (client_credentials) may be registered for, one per resource family. */
export const ADMIN_SCOPES = ['admin:clients', 'admin:accounts', 'admin:keys', 'admin:audit', 'admin:staff'] as const;
export type AdminScope = (typeof ADMIN_SCOPES)[number];

/** What may be done, by which roles, and by machine callers holding which scope (none: people only). */
export const CAPABILITIES = {
  // Officers act on citizens; on the accounts of staff, only admins (a second person, never a colleague officer).
  'accounts.read': { roles: ['officer', 'admin'], scope: 'admin:accounts' },
  'accounts.act': { roles: ['officer', 'admin'], scope: 'admin:accounts' },
  'clients.read': { roles: ['security', 'agency_admin', 'auditor'], scope: 'admin:clients' },
  'clients.write': { roles: ['security', 'agency_admin'], scope: 'admin:clients' },
  // Moving a portal to production (or widening what it may receive) is a decision with a reason, by a person.
  'clients.approve': { roles: ['security'], scope: null },
  'keys.read': { roles: ['security', 'auditor'], scope: 'admin:keys' },
  'keys.write': { roles: ['security'], scope: 'admin:keys' },
  'audit.read': { roles: ['security', 'auditor'], scope: 'admin:audit' },
  'audit.verify': { roles: ['security', 'auditor'], scope: 'admin:audit' },
  'registry.read': { roles: ['security', 'auditor'], scope: 'admin:audit' },
  'staff.read': { roles: ['admin', 'auditor'], scope: 'admin:staff' },
  'staff.write': { roles: ['admin'], scope: 'admin:staff' },
} as const satisfies Record<string, { roles: readonly Role[]; scope: AdminScope | null }>;
export type Capability = keyof typeof CAPABILITIES;

/** One role held by a staff member. */
export interface StaffGrant {
  role: Role;
  /** Officers: province codes they may act in; null: all. */
  provinces: string[] | null;
  /** Agency admins: their agency. */
  agency: string | null;
}

/** Who is asking: a staff member signed in at level 2, or a machine caller with admin scopes. */
export type Principal =
  | { kind: 'staff'; accountId: string; grants: StaffGrant[]; ip?: string; via: 'api' | 'console' }
  | { kind: 'client'; clientId: string; scopes: string[]; ip?: string };

/** What the act is about, for scoped roles: a citizen (by personal ID) or a portal's agency. */
export interface Target {
  pin?: string;
  /**
   * The citizen holds a staff role: officers never act on staff (an admin does), so no officer can take over one.
   * Required with `pin` (authorize refuses a citizen whose staff status is not given).
   */
  staff?: boolean;
  agency?: string | null;
}

/**
 * A grant allows the target: officers in their provinces and never on staff accounts, admins on staff accounts
 * only, agency admins for their agency.
 */
function covers(g: StaffGrant, target: Target): boolean {
  if ((g.role === 'officer' || g.role === 'admin') && target.pin !== undefined) {
    if (target.staff === undefined) return false; // fail closed: who the citizen is must be known
    if (g.role === 'admin') return target.staff;
    return !target.staff && (!g.provinces || g.provinces.includes(target.pin.slice(0, 3)));
  }
  if (g.role === 'agency_admin' && target.agency !== undefined) return !!target.agency && target.agency === g.agency;
  return true;
}

/**
 * The actor to audit the act as, when the principal may do it (to this target), else undefined. A staff member acts
 * in the first of their roles that allows it.
 */
export function authorize(p: Principal, cap: Capability, target: Target = {}): Actor | undefined {
  const rule = CAPABILITIES[cap];
  if (p.kind === 'client') {
    if (!rule.scope || !p.scopes.includes(rule.scope)) return undefined;
    return { type: 'client', id: p.clientId, role: rule.scope, ip: p.ip, via: 'api' };
  }
  const grant = p.grants.find((g) => (rule.roles as readonly string[]).includes(g.role) && covers(g, target));
  if (!grant) return undefined;
  return {
    type: grant.role === 'officer' ? 'officer' : 'staff',
    id: p.accountId,
    role: grant.role,
    ip: p.ip,
    via: p.via,
  };
}

/** The agency an agency admin manages (their first agency_admin grant), if any. */
export const agencyOf = (p: Principal): string | undefined =>
  p.kind === 'staff' ? (p.grants.find((g) => g.role === 'agency_admin')?.agency ?? undefined) : undefined;

/** Whether the principal holds the role (staff) at all. */
export const holds = (p: Principal, role: Role): boolean => p.kind === 'staff' && p.grants.some((g) => g.role === role);

/** The roles an account holds (none: not staff). */
export async function staffGrants(db: Kysely<DB>, accountId: string): Promise<StaffGrant[]> {
  const rows = await db
    .selectFrom('staff_roles')
    .select(['role', 'provinces', 'agency'])
    .where('account_id', '=', accountId)
    .orderBy('role')
    .execute();
  return rows.map((r) => ({ role: r.role as Role, provinces: r.provinces, agency: r.agency }));
}

/** An agency code: lower-case letters, digits, dots and hyphens (e.g. `bo-tai-chinh`). */
const AGENCY = /^[a-z0-9][a-z0-9.-]{1,62}[a-z0-9]$/;

/** What granting a role needs. */
export interface RoleGrant {
  pin: string;
  role: string;
  provinces?: string[];
  agency?: string;
}

/** Checks a grant's input; returns it normalised. */
function checkGrant(g: RoleGrant): { role: Role; provinces: string[] | null; agency: string | null } {
  if (!(ROLES as readonly string[]).includes(g.role))
    throw new AppError('invalid_input', `role must be one of ${ROLES.join(', ')}`);
  const role = g.role as Role;
  const provinces = g.provinces?.length ? [...new Set(g.provinces)] : null;
  if (provinces && role !== 'officer') throw new AppError('invalid_input', 'only officers are scoped to provinces');
  const known = new Set(PROVINCES.keys());
  for (const p of provinces ?? [])
    if (!known.has(p)) throw new AppError('invalid_input', `unknown province code ${p} (3 digits, e.g. 001)`);
  if (role === 'agency_admin' && !g.agency) throw new AppError('invalid_input', 'an agency admin needs an agency');
  if (role !== 'agency_admin' && g.agency) throw new AppError('invalid_input', 'only agency admins have an agency');
  if (g.agency && !AGENCY.test(g.agency))
    throw new AppError('invalid_input', 'agency must be 3 to 64 lower-case letters, digits, "." or "-"');
  return { role, provinces, agency: g.agency ?? null };
}

/** The account of a personal ID (staff are citizens with an e-ID account; never a published test citizen). */
async function accountOfPin(db: Kysely<DB>, pin: string): Promise<string> {
  if (!/^\d{12}$/.test(pin)) throw new AppError('invalid_input', 'personal ID must be 12 digits');
  const row = await db
    .selectFrom('accounts')
    .innerJoin('residents', 'residents.id', 'accounts.resident_id')
    .select(['accounts.id', 'residents.test_citizen'])
    .where('residents.pin', '=', pin)
    .executeTakeFirst();
  if (!row) throw new AppError('not_found', 'no e-ID account for this personal ID');
  if (row.test_citizen) throw new AppError('invalid_input', 'a sandbox test citizen cannot hold a staff role');
  return row.id;
}

/** Whether the account of a personal ID holds any staff role (for `Target.staff`). */
export async function isStaffPin(db: Kysely<DB>, pin: string): Promise<boolean> {
  const row = await db
    .selectFrom('staff_roles')
    .innerJoin('accounts', 'accounts.id', 'staff_roles.account_id')
    .innerJoin('residents', 'residents.id', 'accounts.resident_id')
    .select('staff_roles.role')
    .where('residents.pin', '=', pin)
    .executeTakeFirst();
  return !!row;
}

/** Grants a role (or changes its scope); returns the account id. */
export async function grantRole(db: Kysely<DB>, g: RoleGrant, grantedBy: string): Promise<string> {
  const { role, provinces, agency } = checkGrant(g);
  const accountId = await accountOfPin(db, g.pin);
  await db
    .insertInto('staff_roles')
    .values({ account_id: accountId, role, provinces, agency, granted_by: grantedBy.slice(0, 100) })
    .onConflict((oc) =>
      oc.columns(['account_id', 'role']).doUpdateSet({ provinces, agency, granted_by: grantedBy.slice(0, 100) }),
    )
    .execute();
  return accountId;
}

/** Revokes a role; returns the account id. The last admin cannot be revoked (nobody could grant roles again). */
export async function revokeRole(db: Kysely<DB>, pin: string, role: string): Promise<string> {
  const accountId = await accountOfPin(db, pin);
  if (role === 'admin') {
    // Every admin row locked (two admins revoking each other at once: one waits and then sees the other's revoke).
    const admins = await db
      .selectFrom('staff_roles')
      .innerJoin('accounts', 'accounts.id', 'staff_roles.account_id')
      .select(['staff_roles.account_id', 'accounts.status'])
      .where('staff_roles.role', '=', 'admin')
      .forUpdate()
      .execute();
    const others = admins.filter((a) => a.account_id !== accountId && a.status === 'active');
    if (admins.some((a) => a.account_id === accountId) && !others.length)
      throw new AppError('conflict', 'the last active admin cannot be revoked: grant admin to someone else first');
  }
  const r = await db
    .deleteFrom('staff_roles')
    .where('account_id', '=', accountId)
    .where('role', '=', role)
    .executeTakeFirst();
  if (!r.numDeletedRows) throw new AppError('not_found', `this account does not hold the ${role} role`);
  return accountId;
}

/** A staff member's role as listed. */
export interface StaffEntry {
  account_id: string;
  personal_id: string;
  full_name: string;
  role: Role;
  provinces: string[] | null;
  agency: string | null;
  granted_by: string;
  granted_at: string;
}

/** Every role held, by name. */
export async function listStaff(db: Kysely<DB>): Promise<StaffEntry[]> {
  const rows = await db
    .selectFrom('staff_roles')
    .innerJoin('accounts', 'accounts.id', 'staff_roles.account_id')
    .innerJoin('residents', 'residents.id', 'accounts.resident_id')
    .select([
      'staff_roles.account_id',
      'residents.pin',
      'residents.full_name',
      'staff_roles.role',
      'staff_roles.provinces',
      'staff_roles.agency',
      'staff_roles.granted_by',
      'staff_roles.granted_at',
    ])
    .orderBy('residents.full_name')
    .orderBy('staff_roles.role')
    .execute();
  return rows.map((r) => ({
    account_id: r.account_id,
    personal_id: r.pin,
    full_name: r.full_name,
    role: r.role as Role,
    provinces: r.provinces,
    agency: r.agency,
    granted_by: r.granted_by,
    granted_at: r.granted_at.toISOString(),
  }));
}
