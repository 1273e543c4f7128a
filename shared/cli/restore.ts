// `crs restore --backend aws` (2026-12-07): after DynamoDB restored the State, SeenMessages and Pages tables to one
// instant into new tables (docs/runbook.md, Restoring from a backup), makes the stack's tables hold what those hold,
// page by page, with each patient's sequence moved on by the restore's moment as `crs serve` does at the first start
// on a backup (shared/adapters/aws/restore.ts). It replaced a script in the runbook that held whole tables in memory
// and moved no sequence on (a grade change graded again took the id of one the lost pipeline paged, and a receiver
// or the pager that knew that id dropped it: under-paging). A grade change the restored State holds and the restored
// Pages never paged is written again for the notifier (restore-unpaged.ts).
import { parseTimeWithOffset } from '#domain/typed-time.ts';
import { inline, parseFlags, shown } from './flags.ts';

export const RESTORE_USAGE = `  crs restore --backend aws --at TIME --from-state-table NAME --from-seen-table NAME --from-pages-table NAME
              [--outputs FILE] [--state-table NAME] [--seen-table NAME] [--pages-table NAME]
      with the pipeline paused (docs/runbook.md, Restoring from a backup): makes the stack's State, SeenMessages and
      Pages tables (StateTableName, SeenTableName, PagesTableName in the outputs file, or the flags) hold exactly what
      the tables DynamoDB restored to the instant TIME (RFC 3339 with its offset) hold, page by page, moves each
      patient's sequence on by now and marks each page with it, so that what the restored pipeline pages takes ids
      and sendIds the lost one never sent (a patient first seen later, and a no-data alert, too); writes again, marked,
      each grade change the restored State holds and the restored Pages never paged, which the notifier pages when it
      resumes. Prints the items copied per table and the instant from which every gateway must send again.
      AWS_REGION, credentials and AWS_ENDPOINT_URL as for the AWS CLI.
      Exit 0: copied; 1: a call failed (run it again: it writes only what still differs); 2: usage
`;

class RestoreUsageError extends Error {}

/** The copy failed part way, the restore recorded: what failed, and what to do. */
class CopyUnfinished extends Error {
  constructor(readonly failure: unknown) {
    const e = failure as Error;
    super(
      `${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e.message}; the copy is not whole (the restore's moment is recorded): keep the pipeline paused and run crs restore again (it writes what still differs)`,
    );
  }
}

/** The flags `crs restore` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
export const RESTORE_OPTIONS = {
  backend: { type: 'string' },
  at: { type: 'string' },
  'from-state-table': { type: 'string' },
  'from-seen-table': { type: 'string' },
  'from-pages-table': { type: 'string' },
  'state-table': { type: 'string' },
  'seen-table': { type: 'string' },
  'pages-table': { type: 'string' },
  outputs: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function restoreCommand(args: string[], now: () => number = Date.now): Promise<number> {
  try {
    const { values: v, positionals } = parseFlags({ args, allowPositionals: true, options: RESTORE_OPTIONS });
    if (v.help) {
      process.stdout.write(`usage:\n${RESTORE_USAGE}`);
      return 0;
    }
    if (positionals.length > 0) throw new RestoreUsageError('restore takes no positional arguments');
    if (v.backend !== 'aws')
      throw new RestoreUsageError(
        `--backend aws is needed${v.backend === undefined ? '' : ` (got ${shown(v.backend)})`}: crs serve restores itself when started on a crs backup copy (docs/embedded.md)`,
      );
    if (v.at === undefined)
      throw new RestoreUsageError('restore needs --at TIME: the instant the tables were restored to');
    const takenAt = parseTimeWithOffset(v.at);
    if (Number.isNaN(takenAt))
      throw new RestoreUsageError(
        `--at takes an RFC 3339 time with a zone offset (e.g. 2026-12-07T09:00:00Z); got ${shown(v.at)}`,
      );
    const restoredAt = now();
    if (takenAt > restoredAt) throw new RestoreUsageError(`--at ${v.at} is in the future`);
    const { OperatorUsageError, need, operatorAws, operatorVariables } = await import('./aws-operator.ts');
    const { ENV } = await import('#adapters/aws/env.ts');
    let pairs: [label: string, from: string, to: string][];
    let settings: { region: string };
    try {
      const vars = operatorVariables(v.outputs, process.env, {
        [ENV.stateTable]: v['state-table'],
        [ENV.seenTable]: v['seen-table'],
        [ENV.pagesTable]: v['pages-table'],
      });
      const from = (flag: 'from-state-table' | 'from-seen-table' | 'from-pages-table') => {
        const name = v[flag];
        if (!name) throw new RestoreUsageError(`restore needs --${flag} NAME: the table DynamoDB restored`);
        return name;
      };
      pairs = [
        ['State', from('from-state-table'), need(vars, ENV.stateTable, 'state-table')],
        ['SeenMessages', from('from-seen-table'), need(vars, ENV.seenTable, 'seen-table')],
        ['Pages', from('from-pages-table'), need(vars, ENV.pagesTable, 'pages-table')],
      ];
      for (const [label, f, t] of pairs)
        if (f === t)
          throw new RestoreUsageError(
            `--from-${label === 'SeenMessages' ? 'seen' : label.toLowerCase()}-table is the stack's own table ${t}: give the restored one`,
          );
      settings = await operatorAws();
    } catch (err) {
      if (err instanceof OperatorUsageError) throw new RestoreUsageError(err.message);
      throw err;
    }
    const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
    const { copyTable, recordRestore } = await import('#adapters/aws/restore.ts');
    const { unpagedRecords } = await import('#adapters/aws/restore-unpaged.ts');
    const client = new DynamoDBClient(settings);
    try {
      // First: a copy that fails part way leaves the moment recorded (ids moved on are harmless), and the run
      // again records its own (until 2026-12-07 it was written last, and a failure left none until then).
      await recordRestore(client, pairs[0]![2], { restoredAt, takenAt });
      try {
        for (const [label, from, to] of pairs) {
          const c = await copyTable(
            client,
            from,
            to,
            label === 'SeenMessages'
              ? {}
              : label === 'State'
                ? { restoredAt, anew: unpagedRecords(client, pairs[2]![1], restoredAt) }
                : { restoredAt },
          );
          const unreadable = c.unreadable ? `, ${c.unreadable} unreadable item(s) copied as they are` : '';
          const unpaged = c.anew
            ? `; ${c.anew} grade change(s) or alert(s) never paged by ${new Date(takenAt).toISOString()} written again: the notifier pages them when it resumes, marked with the restore`
            : '';
          const moved =
            label === 'State'
              ? `; ${c.movedOn} patient(s) moved on${unpaged}${unreadable}`
              : label === 'Pages'
                ? `; ${c.marked} page(s) marked with the restore${unreadable}`
                : '';
          process.stdout.write(
            `${label}: ${to} holds the ${c.items} item(s) of ${from}: ${c.put} put, ${c.deleted} deleted${moved}\n`,
          );
        }
      } catch (err) {
        throw new CopyUnfinished(err);
      }
    } finally {
      client.destroy();
    }
    process.stdout.write(
      `restored at ${new Date(restoredAt).toISOString()} to ${new Date(takenAt).toISOString()}: resume the pipeline, then have every gateway send again everything it sent since ${new Date(takenAt).toISOString()}\n`,
    );
    return 0;
  } catch (err) {
    const e = err as Error & { code?: string; name?: string };
    if (e instanceof RestoreUsageError || e.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`crs restore: ${inline(e.message)}\nusage:\n${RESTORE_USAGE}`);
      return 2;
    }
    process.stderr.write(`crs restore: ${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${inline(e.message)}\n`);
    return 1;
  }
}
