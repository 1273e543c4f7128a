// `crs audit export --patient P [--format ndjson|csv] [--data DIR] [--backend embedded]`: one patient's audit
// trail (assessments, grade changes, pages, deliveries, escalations, acknowledgements and refusals, alerts,
// silences), oldest first, on standard output. Any AuditLog port can be the source: each backend adds its own
// entry to AUDIT_SOURCES (the embedded one reads the data directory of `crs serve`, even while it runs).
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SqliteAuditLog } from '#adapters/sqlite/audit.ts';
import { DB_FILE, refuseNewerSchema } from '#adapters/sqlite/db.ts';
import { auditCsvHeader, auditCsvRow, auditNdjsonRow } from '#app/audit-export.ts';
import { CONTRACT_ID } from '#app/interfaces/ids.ts';
import { inline, isOneOf, shown, parseFlags } from './flags.ts';
import type { AuditLog } from '#ports';
import { damagedDatabase, DEFAULT_DATA_DIR } from '#hosts/embedded/embedded.ts';

export const AUDIT_USAGE = `  crs audit export --patient P [--format ndjson|csv] [--data DIR] [--backend embedded]
      one patient's audit trail, oldest first, on stdout ("--patient '*'": team-wide entries, e.g. team silences)
  crs audit export --patient P [--format ndjson|csv] --backend aws
                   [--table NAME --seen-table NAME --state-table NAME | --outputs FILE]
      the same from a deployment's DynamoDB audit table, seen-messages table (which carries the assessments of
      first-time messages) and state table (those of the patient's last messages): NAME, $CRS_AUDIT_TABLE,
      $CRS_SEEN_TABLE and $CRS_STATE_TABLE, or AuditTableName, SeenTableName and StateTableName in the stack's
      outputs file; AWS_REGION, credentials and AWS_ENDPOINT_URL as for the AWS CLI
`;

class AuditUsageError extends Error {}

export interface AuditSource {
  log: AuditLog;
  close(): void;
  /** What it reads, named in a failed read's line (DynamoDB's "Requested resource not found" names no table). */
  where?: string;
}

type Options = Record<string, string | boolean | undefined>;

/** Where each backend keeps its audit trail. */
export const AUDIT_SOURCES: Record<string, (o: Options) => Promise<AuditSource>> = {
  embedded: async (o) => {
    const dir = resolve(typeof o.data === 'string' ? o.data : DEFAULT_DATA_DIR);
    const file = join(dir, DB_FILE);
    if (!existsSync(file))
      throw new AuditUsageError(`no crs database in ${dir} (give the data directory of crs serve with --data DIR)`);
    // Read-only, beside a running server (WAL): the export never writes, and never migrates.
    const db = new Database(file, { readonly: true, fileMustExist: true });
    let version: number;
    try {
      version = db.pragma('user_version', { simple: true }) as number;
      // A newer crs's trail may have columns (or meanings) this one does not know: refused, as the other commands do.
      refuseNewerSchema(version);
    } catch (err) {
      db.close();
      throw damagedDatabase(dir, err, 'crs audit');
    }
    if (version < 2) {
      db.close();
      throw new AuditUsageError(
        `${file} is from an older crs (schema ${version}) with no audit trail yet: start crs serve on it once to upgrade it`,
      );
    }
    return { log: new SqliteAuditLog(db), close: () => db.close() };
  },
  // The audit table of an AWS deployment (or of a `crs serve --backend aws` run): Query only.
  aws: async (o) => {
    const { auditSource, OperatorUsageError } = await import('./aws-operator.ts');
    try {
      return await auditSource(o);
    } catch (err) {
      throw err instanceof OperatorUsageError ? new AuditUsageError(err.message) : err;
    }
  },
};

function usage(message: string): number {
  process.stderr.write(`crs audit: ${message}\nusage:\n${AUDIT_USAGE}`);
  return 2;
}

/** The flags `crs audit export` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
/** What `crs audit` does. */
export const AUDIT_ACTIONS = ['export'] as const;

export const AUDIT_OPTIONS = {
  patient: { type: 'string' },
  format: { type: 'string', default: 'ndjson' },
  data: { type: 'string' },
  backend: { type: 'string', default: 'embedded' },
  table: { type: 'string' },
  'seen-table': { type: 'string' },
  'state-table': { type: 'string' },
  outputs: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function auditCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`usage:\n${AUDIT_USAGE}`);
    return 0;
  }
  if (!isOneOf(AUDIT_ACTIONS, sub))
    return usage(sub === undefined ? 'say what to do: export' : `unknown sub-command ${shown(sub)}`);
  let values: Options;
  try {
    values = parseFlags({
      args: rest,
      options: AUDIT_OPTIONS,
    }).values;
  } catch (err) {
    return usage(inline((err as Error).message)); // Node quotes an unknown option raw
  }
  if (values.help) {
    process.stdout.write(`usage:\n${AUDIT_USAGE}`);
    return 0;
  }
  const patientId = values.patient;
  if (typeof patientId !== 'string' || patientId === '') return usage('--patient P is required');
  // An id no patient can have (a CR pasted with it, a space) read nothing and said so with exit 0, as if the trail
  // were empty; on AWS one too long for a key failed as an incomplete export. Named (escaped), before any read.
  if (patientId !== '*' && !CONTRACT_ID.test(patientId))
    return usage(
      `--patient must be a patient id (1-64 characters of A-Z a-z 0-9 . _ : -) or * (team-wide entries) (got ${shown(patientId)})`,
    );
  if (values.format !== 'ndjson' && values.format !== 'csv')
    return usage(`--format must be ndjson or csv (got ${shown(String(values.format))})`);
  const open = AUDIT_SOURCES[String(values.backend)];
  if (!open)
    return usage(
      `--backend must be one of ${Object.keys(AUDIT_SOURCES).join(', ')} (got ${shown(String(values.backend))})`,
    );

  let source: AuditSource;
  try {
    source = await open(values);
  } catch (err) {
    if (err instanceof AuditUsageError) return usage(err.message);
    process.stderr.write(`crs audit: ${(err as Error).message}\n`);
    return 1;
  }
  const out = process.stdout;
  const write = (chunk: string) =>
    out.write(chunk) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', r));
  let count = 0;
  try {
    if (values.format === 'csv') await write(auditCsvHeader());
    for await (const e of source.log.forPatient(patientId)) {
      await write(values.format === 'csv' ? auditCsvRow(e) : auditNdjsonRow(e));
      count++;
    }
  } catch (err) {
    // Said in one line, as the other operator commands do, and never taken for a whole trail (exit 1).
    process.stderr.write(
      `crs audit: reading the trail failed after ${count} entr${count === 1 ? 'y' : 'ies'}: the export is incomplete (${(err as Error).name}: ${(err as Error).message}${source.where ? `; ${source.where}` : ''})\n`,
    );
    return 1;
  } finally {
    source.close();
  }
  process.stderr.write(`crs audit: ${count} entr${count === 1 ? 'y' : 'ies'} for patient ${patientId}\n`);
  return 0;
}
