// `crs dead-letters list|redrive`: the accepted messages grading set aside after failing 3 times (the embedded
// backend's dead letters, AWS's MessagesDlq), listed and put back to be graded once the cause is fixed. As
// `crs outbox`: through the running `crs serve` of the data directory (its board API, with the key kept there),
// or with no server running, on the database itself under the data directory's lock (a redriven message is then
// graded when the server starts). On AWS the dead letters are the MessagesDlq queue's, redriven by SQS itself.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DeadLetter } from '#adapters/sqlite/dead-letters.ts';
import { DEFAULT_DATA_DIR } from '#hosts/embedded/embedded.ts';
import { oneLine } from '#hosts/embedded/log-line.ts';
import { inline, isOneOf, shown, parseFlags } from './flags.ts';
import { withStoppedDataDir } from './stopped-data-dir.ts';
import { answeringServer, eachIdOrAll } from './serve-client.ts';

/** What to do on AWS, where SQS keeps the dead letters (the runbook's MessagesDlqDepth says the same). */
const ON_AWS =
  "on AWS the dead letters are on the MessagesDlq queue (alarm MessagesDlqDepth): fix the cause, then redrive them with SQS's dead-letter queue redrive (the console's Start DLQ redrive, or aws sqs start-message-move-task --source-arn <MessagesDlqArn>, a stack output): docs/runbook.md";

export const DEAD_LETTERS_USAGE = `usage:
  crs dead-letters list [--json] [--data DIR]              accepted messages grading failed 3 times: set aside, not graded
  crs dead-letters redrive (--all | ID...) [--data DIR]    put them back to be graded (once: one already applied is a duplicate)
  ${ON_AWS}
`;

class DeadLettersUsageError extends Error {}

const out = (line: string): void => void process.stdout.write(`${line}\n`);
const err = (line: string): void => void process.stderr.write(`${line}\n`);

function print(rows: DeadLetter[], json: boolean, extra: Record<string, unknown> = {}): void {
  if (json) {
    out(JSON.stringify({ deadLetters: rows, ...extra }, null, 2));
    return;
  }
  if (rows.length === 0) out('no dead letters');
  for (const r of rows)
    out(
      oneLine(
        `${r.id}  ${r.failedAt}  patient ${r.patientId}  message ${r.messageId}  received ${r.receivedAt}  (failed ${r.attempts} times: ${r.error.slice(0, 300)})`,
      ),
    );
}

/** The flags `crs dead-letters` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
/** What `crs dead-letters` does. */
export const DEAD_LETTERS_ACTIONS = ['list', 'redrive'] as const;

export const DEAD_LETTERS_OPTIONS = {
  backend: { type: 'string' },
  data: { type: 'string' },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function deadLettersCommand(args: string[]): Promise<number> {
  let v;
  let positionals: string[];
  try {
    ({ values: v, positionals } = parseFlags({
      args,
      allowPositionals: true,
      options: DEAD_LETTERS_OPTIONS,
    }));
  } catch (e) {
    err(`crs dead-letters: ${inline((e as Error).message)}\n${DEAD_LETTERS_USAGE}`); // Node quotes an unknown option raw
    return 2;
  }
  if (v.help) {
    out(DEAD_LETTERS_USAGE);
    return 0;
  }
  const [action, ...ids] = positionals;
  try {
    if (!isOneOf(DEAD_LETTERS_ACTIONS, action)) throw new DeadLettersUsageError('give list or redrive');
    if (action === 'list' && (ids.length > 0 || v.all)) throw new DeadLettersUsageError('list takes no ids');
    if (action === 'redrive' && (ids.length === 0) === !v.all)
      throw new DeadLettersUsageError('redrive takes either --all or the ids to redrive');
    for (const id of ids)
      if (!/^[1-9]\d{0,15}$/.test(id))
        throw new DeadLettersUsageError(`ID must be a number crs dead-letters list printed (got ${shown(id)})`);
    if (v.backend === 'aws') throw new DeadLettersUsageError(ON_AWS);
    if (v.backend !== undefined && v.backend !== 'embedded')
      throw new DeadLettersUsageError('--backend must be embedded (or aws, to be told how SQS redrives)');
    return await embedded(action, ids, v);
  } catch (e) {
    if (e instanceof DeadLettersUsageError) {
      err(`crs dead-letters: ${e.message}\n${DEAD_LETTERS_USAGE}`);
      return 2;
    }
    err(`crs dead-letters: ${(e as Error).message}`);
    return 1;
  }
}

type Values = { data?: string; all?: boolean; json?: boolean };

const nothingDeadLettered = (id: string) => `crs dead-letters: nothing dead-lettered as ${id}`;

async function embedded(action: 'list' | 'redrive', ids: string[], v: Values): Promise<number> {
  const dir = resolve(v.data ?? DEFAULT_DATA_DIR);
  const { DB_FILE } = await import('#adapters/sqlite/db.ts');
  if (!existsSync(join(dir, DB_FILE)))
    throw new DeadLettersUsageError(`${dir} holds no crs database (give the --data DIR of crs serve)`);
  const server = await answeringServer(dir, '/api/dead-letters');
  if (server) {
    if (action === 'list') {
      const body = (await server.call('GET', '/api/dead-letters')).json as unknown as {
        deadLetters: DeadLetter[];
        alerts: { text: string }[];
      };
      print(body.deadLetters, v.json ?? false, { alerts: body.alerts });
      if (!v.json) for (const a of body.alerts) out(oneLine(`ALERT ${a.text}`));
      return 0;
    }
    const done = await eachIdOrAll(
      v.all,
      ids,
      async (id) => {
        const r = await server.call('POST', '/api/dead-letters/redrive', id ? { id } : {});
        if (r.status !== 200) throw new Error(`the server answered ${r.status}: ${JSON.stringify(r.json)}`);
        return r.json.redriven as number;
      },
      nothingDeadLettered,
    );
    out(`${done.count} dead-lettered message(s) put back in the inbox: graded now`);
    return done.missing > 0 ? 1 : 0;
  }
  // No server: the database itself, under the data directory's lock.
  const { listDeadLetters, redriveDeadLetters } = await import('#adapters/sqlite/dead-letters.ts');
  return withStoppedDataDir(dir, 'crs dead-letters', async (db) => {
    if (action === 'list') {
      print(listDeadLetters(db), v.json ?? false);
      if (!v.json) err(`crs dead-letters: no crs serve is running on ${dir}; read from its database`);
      return 0;
    }
    const done = await eachIdOrAll(v.all, ids, async (id) => redriveDeadLetters(db, id), nothingDeadLettered);
    out(
      `${done.count} dead-lettered message(s) put back in the inbox; no crs serve is running on ${dir}: they are graded when it starts`,
    );
    return done.missing > 0 ? 1 : 0;
  });
}
