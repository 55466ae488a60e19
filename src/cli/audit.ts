/** `dinhdanh audit verify|export|archive`: the tamper-evident audit trail. Archiving is an audited operator act. */
import { once } from 'node:events';
import { type Command, Option } from 'commander';
import { audited } from '../audit/audited.ts';
import { archiveEvents, exportEvents, recordVerification, verifyChain } from '../audit/index.ts';
import { AppError } from '../errors.ts';
import { type GetConfig, operatorOf, parseTime, print, withDatabase } from './shared.ts';

/** Adds the `audit` commands to the program. */
export function auditCommands(cli: Command, getConfig: GetConfig): void {
  const audit = cli.command('audit').description('the tamper-evident audit trail');
  audit
    .command('verify')
    .description('walk the hash chain; name the first row altered, deleted or reordered (the result is audited)')
    .option('--operator <name>', 'who is verifying (default: the OS user)')
    .action(async (o) => {
      await withDatabase(getConfig(), async ({ db }) => {
        const r = await verifyChain(db);
        // Recorded on the chain (the metric of the last verification reads it); a standby cannot record, and that
        // does not change what was found.
        await recordVerification(db, r, operatorOf(o)).catch((err: unknown) =>
          process.stderr.write(`dinhdanh: the result could not be recorded in the audit trail: ${String(err)}\n`),
        );
        if (r.ok) process.stdout.write(`audit chain intact: ${r.rows} events, last seq ${r.lastSeq}\n`);
        else {
          const what = {
            altered: 'was altered',
            missing_before: 'follows a deleted row',
            reordered: 'is out of order',
          }[r.problem];
          throw new AppError('conflict', `audit chain broken: row seq ${r.seq} ${what}`);
        }
      });
    });
  audit
    .command('export')
    .description('write events as NDJSON to stdout')
    .option('--since <time>', 'only events at or after this ISO time')
    .addOption(
      new Option('--actor <type>', 'only this actor type').choices([
        'citizen',
        'officer',
        'operator',
        'client',
        'system',
      ]),
    )
    .action(async (o) => {
      const since = o.since === undefined ? undefined : parseTime('--since', o.since);
      await withDatabase(getConfig(), async ({ db }) => {
        await exportEvents(db, { since, actorType: o.actor }, async (line) => {
          if (!process.stdout.write(line)) await once(process.stdout, 'drain');
        });
      });
    });
  audit
    .command('archive')
    .description('move events older than the retention period (or --before) to an NDJSON file, keeping a checkpoint')
    .requiredOption('--out <file>', 'archive file to create (must not exist)')
    .option('--before <time>', 'archive events before this ISO time (default: now - AUDIT_RETENTION_DAYS)')
    .option('--operator <name>', 'who is archiving (default: the OS user)')
    .action(async (o) => {
      const config = getConfig();
      const before =
        o.before === undefined
          ? new Date(Date.now() - config.auditRetentionDays * 86400_000)
          : parseTime('--before', o.before);
      await withDatabase(config, async ({ db }) => {
        // Not one transaction: archiveEvents writes the file, then commits the checkpoint and the deletion in its own
        // transaction under the chain lock (src/audit). The event follows at once; should it fail, the checkpoint,
        // which names the archive's SHA-256, still records that the archive happened.
        const r = await archiveEvents(db, before, o.out);
        await audited(db, { type: 'operator', id: operatorOf(o) }, 'audit.archived', async () => ({
          result: undefined,
          details: { ...r, before: before.toISOString() },
        }));
        print(r);
      });
    });
}
