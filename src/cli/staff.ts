/**
 * `dinhdanh staff grant|revoke|list`: staff roles, from the host. This is how the first admin is made; after that,
 * admins grant roles in the console or the admin API. Each change is audited with the operator.
 */
import { type Command, Option } from 'commander';
import { grantStaffRole, revokeStaffRole } from '../admin/acts.ts';
import type { Actor } from '../audit/index.ts';
import { listStaff, ROLES } from '../staff/index.ts';
import { actDeps, collect, type GetConfig, operatorOf, print, withDatabase } from './shared.ts';

/** Adds the `staff` commands to the program. */
export function staffCommands(cli: Command, getConfig: GetConfig): void {
  const operator = (o: { operator?: string }): Actor => ({ type: 'operator', id: operatorOf(o), via: 'cli' });
  const staff = cli
    .command('staff')
    .description('staff roles: officer, security, agency_admin, auditor, admin (the console needs level 2)');
  staff
    .command('grant')
    .description('grant a role to the e-ID account of a personal ID (again: changes its provinces or agency)')
    .requiredOption('--personal-id <pin>', "the staff member's 12-digit personal ID (they need an e-ID account)")
    .addOption(new Option('--role <role>', 'the role').choices([...ROLES]).makeOptionMandatory())
    .option('--province <code>', 'officers: a province code they may act in (repeatable; default all)', collect, [])
    .option('--agency <code>', 'agency admins: their agency (e.g. bo-tai-chinh)')
    .option('--operator <name>', 'who is granting (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) =>
        print(
          await grantStaffRole(actDeps(config, db), operator(o), {
            pin: o.personalId,
            role: o.role,
            provinces: o.province,
            agency: o.agency,
          }),
        ),
      );
    });
  staff
    .command('revoke')
    .description('revoke a role (never the last admin)')
    .requiredOption('--personal-id <pin>', "the staff member's 12-digit personal ID")
    .addOption(new Option('--role <role>', 'the role').choices([...ROLES]).makeOptionMandatory())
    .option('--operator <name>', 'who is revoking (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      await withDatabase(config, async ({ db }) =>
        print(await revokeStaffRole(actDeps(config, db), operator(o), o.personalId, o.role)),
      );
    });
  staff
    .command('list')
    .description('staff and their roles')
    .action(async () => {
      await withDatabase(getConfig(), async ({ db }) => print(await listStaff(db)));
    });
}
