// `crs outbox list|retry`: the records a lane parked because its receiver refused them (issue 10), on both backends.
// Embedded: through the running `crs serve` of the data directory (its board API, with the key kept there), which
// also shows each lane's backlog and the delivery alerts; with no server running, from the database itself (a
// retry then takes effect when the server starts). AWS (`--backend aws`), with the operator's credentials, as
// `crs silence` does: the page sends SNS refused (lane sns) and the outbox records the notifier parked, bad in
// themselves (lane notify), both in the pages table, and the stream ranges the notifier's stream gave up on (the
// NotifyFailures queue: lane notify); a retry sends them again through the pager, and reads a range's records from
// the stream again (within the 24 hours the stream keeps them).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { GradingConfig } from '#domain/config.ts';
import { iso } from '#domain/time.ts';
import { DEFAULT_DATA_DIR } from '#hosts/embedded/embedded.ts';
import { EMBEDDED_LANES, isLaneName } from '#hosts/embedded/lanes.ts';
import { idArgumentError, inline, isOneOf, shown, parseFlags } from './flags.ts';
import { withStoppedDataDir } from './stopped-data-dir.ts';
import { answeringServer, eachIdOrAll } from './serve-client.ts';

export const OUTBOX_USAGE = `usage:
  crs outbox list [--json] [--data DIR]                      records the lanes parked (a receiver refused them); a running
                                                             crs serve also gives each lane's backlog and the delivery alerts
  crs outbox retry (--all | ID...) [--sink stdout|pager|board|webhook] [--data DIR]  put parked records back in their lanes (in outbox order)
  crs outbox list|retry ... --backend aws [--outputs FILE] [--config FILE] [--sink sns|notify]
      sns: the page sends SNS refused (pages table, partition #parked); retry sends them again
      notify: the outbox records the notifier parked (record#...), and the stream ranges it gave up on (stream#...,
      the NotifyFailures queue, CRS_NOTIFY_FAILURES_QUEUE): retry pages them again (a range within 24 hours)
`;

type LoadConfig = (file: string | undefined, scheme: string | undefined) => GradingConfig;

class OutboxUsageError extends Error {}

/** The longest ID a parked record has (a page send's on AWS: the page id, level and round). */
const MAX_ID = 1024;

interface Row {
  id: string;
  lane: string;
  patientId: string;
  kind: string;
  reason: string;
  attempts: number;
  parkedAt: string;
}

const out = (line: string): void => void process.stdout.write(`${line}\n`);
const err = (line: string): void => void process.stderr.write(`${line}\n`);

function print(rows: Row[], json: boolean, extra: Record<string, unknown> = {}): void {
  if (json) {
    out(JSON.stringify({ parked: rows, ...extra }, null, 2));
    return;
  }
  if (rows.length === 0) out('no parked records');
  for (const r of rows)
    out(
      `${r.parkedAt}  ${r.lane.padEnd(8)} ${r.kind.padEnd(12)} ${r.id}  patient ${r.patientId}  (${r.attempts} refusals: ${r.reason})`,
    );
}

/** A lane as GET /api/outbox gives it (LaneHealth, its time in RFC 3339). */
interface LaneRow {
  sink: string;
  backlog: number;
  oldestAt: string | null;
  parked: number;
  retrying: boolean;
  lastError: string | null;
}

/** One lane's backlog, as the usage promises it (only --json printed the lanes until 2026-12-06). */
const laneLine = (l: LaneRow) =>
  `lane ${l.sink.padEnd(8)} backlog ${l.backlog}${l.oldestAt ? ` (oldest ${l.oldestAt})` : ''}, parked ${l.parked}${
    l.retrying ? `, retrying (${l.lastError ?? 'the receiver is down'})` : ''
  }`;

/** The flags `crs outbox` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
/** What `crs outbox` does. */
export const OUTBOX_ACTIONS = ['list', 'retry'] as const;

export const OUTBOX_OPTIONS = {
  backend: { type: 'string' },
  data: { type: 'string' },
  outputs: { type: 'string' },
  config: { type: 'string' },
  sink: { type: 'string' },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function outboxCommand(args: string[], loadConfig: LoadConfig): Promise<number> {
  let v;
  let positionals: string[];
  try {
    ({ values: v, positionals } = parseFlags({
      args,
      allowPositionals: true,
      options: OUTBOX_OPTIONS,
    }));
  } catch (e) {
    err(`crs outbox: ${inline((e as Error).message)}\n${OUTBOX_USAGE}`); // Node quotes an unknown option raw
    return 2;
  }
  if (v.help) {
    out(OUTBOX_USAGE);
    return 0;
  }
  const [action, ...ids] = positionals;
  try {
    if (!isOneOf(OUTBOX_ACTIONS, action)) throw new OutboxUsageError('give list or retry');
    if (action === 'list' && (ids.length > 0 || v.all)) throw new OutboxUsageError('list takes no ids');
    if (action === 'retry' && (ids.length === 0) === !v.all)
      throw new OutboxUsageError('retry takes either --all or the ids to retry');
    // Before any backend is asked: an empty ID retried every parked record through crs serve (it was sent as no
    // id), and an ID's control characters were echoed raw in "nothing parked as ...".
    for (const id of ids) {
      const bad = idArgumentError('ID', id, MAX_ID);
      if (bad) throw new OutboxUsageError(bad);
    }
    if (v.backend === 'aws') return await awsOutbox(action, ids, v, loadConfig);
    if (v.backend !== undefined && v.backend !== 'embedded')
      throw new OutboxUsageError('--backend must be aws or embedded');
    return await embeddedOutbox(action, ids, v);
  } catch (e) {
    if (e instanceof OutboxUsageError || /^(cannot read config|invalid config)/.test((e as Error).message)) {
      err(`crs outbox: ${(e as Error).message}\n${OUTBOX_USAGE}`);
      return 2;
    }
    err(`crs outbox: ${(e as Error).message}`);
    return 1;
  }
}

type Values = { data?: string; outputs?: string; config?: string; sink?: string; all?: boolean; json?: boolean };

async function embeddedOutbox(action: 'list' | 'retry', ids: string[], v: Values): Promise<number> {
  if (v.sink !== undefined && !isLaneName(v.sink))
    throw new OutboxUsageError(`--sink must be one of ${EMBEDDED_LANES.join(', ')} (got ${shown(v.sink)})`);
  const dir = resolve(v.data ?? DEFAULT_DATA_DIR);
  const { DB_FILE } = await import('#adapters/sqlite/db.ts');
  if (!existsSync(join(dir, DB_FILE)))
    throw new OutboxUsageError(`${dir} holds no crs database (give the --data DIR of crs serve)`);
  const server = await answeringServer(dir, '/api/outbox');
  if (server) {
    if (action === 'list') {
      const r = await server.call('GET', '/api/outbox');
      const body = r.json as unknown as {
        parked: {
          itemId: string;
          sink: string;
          patientId: string;
          kind: string;
          reason: string;
          attempts: number;
          parkedAt: string;
        }[];
        lanes: LaneRow[];
        alerts: { text: string }[];
      };
      const rows = body.parked.map((p) => ({
        id: p.itemId,
        lane: p.sink,
        patientId: p.patientId,
        kind: p.kind,
        reason: p.reason,
        attempts: p.attempts,
        parkedAt: p.parkedAt,
      }));
      print(rows, v.json ?? false, { lanes: body.lanes, alerts: body.alerts });
      if (!v.json) for (const l of body.lanes) out(laneLine(l));
      if (!v.json) for (const a of body.alerts) out(`ALERT ${a.text}`);
      return 0;
    }
    const retried = await eachIdOrAll(
      v.all,
      ids,
      async (itemId) => {
        const r = await server.call('POST', '/api/outbox/retry', {
          ...(v.sink ? { sink: v.sink } : {}),
          ...(itemId ? { itemId } : {}),
        });
        if (r.status !== 200) throw new Error(`the server answered ${r.status}: ${JSON.stringify(r.json)}`);
        return r.json.retried as number;
      },
      (id) => nothingParked(id, v.sink),
    );
    out(`${retried.count} parked record(s) put back in their lanes`);
    return retried.missing > 0 ? 1 : 0;
  }
  // No server: the database itself, under the data directory's lock. A retry is a deleted parked row; the lanes
  // deliver it when the server starts.
  return withStoppedDataDir(dir, 'crs outbox', async (db) => {
    if (action === 'list') {
      const rows = db
        .prepare(
          'SELECT p.item_id AS id, p.sink AS lane, o.patient_id AS patientId, o.kind, p.reason, p.attempts, p.parked_at AS parkedAt FROM parked p JOIN outbox o ON o.item_id = p.item_id ORDER BY p.seq',
        )
        .all() as Row[];
      print(rows, v.json ?? false);
      if (!v.json) err(`crs outbox: no crs serve is running on ${dir}; read from its database`);
      return 0;
    }
    const del = db.prepare('DELETE FROM parked WHERE (? IS NULL OR sink = ?) AND (? IS NULL OR item_id = ?)');
    const retried = await eachIdOrAll(
      v.all,
      ids,
      async (itemId) => del.run(v.sink ?? null, v.sink ?? null, itemId ?? null, itemId ?? null).changes,
      (id) => nothingParked(id, v.sink),
    );
    out(
      `${retried.count} parked record(s) put back in their lanes; no crs serve is running on ${dir}: they are delivered when it starts`,
    );
    return retried.missing > 0 ? 1 : 0;
  });
}

/** What both backends say of an id that matched nothing parked (and exit 1: a script retrying several ids learns which did nothing). */
const nothingParked = (id: string, lane?: string) =>
  `crs outbox: nothing parked as ${id}${lane ? ` in lane ${lane}` : ''}`;

async function awsOutbox(action: 'list' | 'retry', ids: string[], v: Values, loadConfig: LoadConfig): Promise<number> {
  if (v.sink !== undefined && v.sink !== 'sns' && v.sink !== 'notify') {
    throw new OutboxUsageError(
      "on AWS the lanes that park are sns (the pager's page sends) and notify (the notifier's outbox records)",
    );
  }
  const { operatorAws, operatorPaging, operatorVariables, OperatorUsageError, OPERATOR_ENV } = await import(
    './aws-operator.ts'
  );
  const { OutboxDelivery } = await import('#adapters/aws/outbox-delivery.ts');
  const failuresQueue = await import('#adapters/aws/notify-failures.ts');
  const { SQSClient } = await import('@aws-sdk/client-sqs');
  const { DynamoDBStreamsClient } = await import('@aws-sdk/client-dynamodb-streams');
  // A name missing (or an unreadable outputs file, or no region) is a usage error (2), as for crs silence and crs audit.
  let vars: Record<string, string>;
  let aws: { region: string };
  let paging: Awaited<ReturnType<typeof operatorPaging>>;
  try {
    vars = operatorVariables(v.outputs, process.env);
    aws = await operatorAws();
    paging = await operatorPaging(vars, loadConfig(v.config, undefined), aws);
  } catch (e) {
    throw e instanceof OperatorUsageError ? new OutboxUsageError(e.message) : e;
  }
  const sqs = new SQSClient(aws);
  const streams = new DynamoDBStreamsClient(aws);
  const queueUrl = vars[OPERATOR_ENV.notifyFailuresQueue];
  const sns = v.sink !== 'notify';
  const notify = v.sink !== 'sns';
  let failures: import('#adapters/aws/notify-failures.ts').NotifyFailure[] = [];
  try {
    // Each parked item is read on its own: one that cannot be read is named (id, why), the others listed and retried.
    const none = { items: [], unreadable: [] };
    const sendsRead = sns ? await paging.parked.read() : none;
    const recordsRead = notify ? await paging.parkedRecords.read() : none;
    const sends = sendsRead.items;
    const records = recordsRead.items;
    const unreadable = [
      ...sendsRead.unreadable.map((u) => ({ id: u.key, lane: 'sns', reason: u.reason })),
      ...recordsRead.unreadable.map((u) => ({ id: u.key, lane: 'notify', reason: u.reason })),
    ];
    const sayUnreadable = (list: typeof unreadable) => {
      if (list.length > 0)
        err(
          `crs outbox: ${list.length} parked item(s) cannot be read (${list.map((u) => u.id).join(', ')}): mend or delete each (pages table, pk #parked, sk the id), then list or retry again`,
        );
    };
    if (notify && queueUrl) {
      const read = await failuresQueue.receiveNotifyFailures(sqs, queueUrl);
      failures = read.failures;
      if (read.unreadable > 0)
        err(`crs outbox: ${read.unreadable} message(s) on NotifyFailures are not stream failures; left there`);
    } else if (notify) {
      err(
        `crs outbox: the NotifyFailures queue was not read (give --outputs FILE, or set ${OPERATOR_ENV.notifyFailuresQueue})`,
      );
    }
    const key = (p: { pageId: string; level: number; round: number }) => `${p.pageId}#${p.level}#${p.round}`;
    const recordId = (r: { key: string }) => `record#${r.key}`;
    if (action === 'list') {
      print(
        [
          ...sends.map((p) => ({
            id: key(p),
            lane: 'sns',
            patientId: p.patientId,
            kind: `page ${p.team}`,
            reason: p.reason,
            attempts: p.attempts,
            parkedAt: p.parkedAt,
          })),
          ...records.map((r) => ({
            id: recordId(r),
            lane: 'notify',
            patientId: r.patientId,
            kind: 'record',
            reason: r.reason,
            attempts: 1,
            parkedAt: r.parkedAt,
          })),
        ],
        v.json ?? false,
        { unreadable, streamFailures: failures.map(({ receiptHandle: _, ...f }) => f) },
      );
      if (!v.json) {
        for (const u of unreadable)
          out(`unreadable            ${u.lane.padEnd(8)} ${u.id}: its stored item cannot be read (${u.reason})`);
        for (const f of failures) {
          out(
            `${f.firstArrival}  notify   stream range ${f.id}  (${f.batchSize} record(s) the stream gave up on: ${f.condition}; crs outbox retry ${f.id})`,
          );
        }
      }
      sayUnreadable(unreadable);
      return unreadable.length > 0 ? 1 : 0;
    }
    const chosen = (id: string, ...names: string[]) => v.all || ids.includes(id) || names.some((n) => ids.includes(n));
    const known = [
      ...sends.flatMap((p) => [key(p), p.pageId]),
      ...records.flatMap((r) => [recordId(r), r.key]),
      ...failures.map((f) => f.id),
      ...unreadable.flatMap((u) => [u.id, u.id.replace(/^record#/, '')]),
    ];
    const missing = v.all ? [] : ids.filter((id) => !known.includes(id));
    for (const id of missing) err(nothingParked(id));
    // Named, never retried: what it would send is not known.
    const unreadableChosen = unreadable.filter((u) => chosen(u.id, u.id.replace(/^record#/, '')));
    sayUnreadable(unreadableChosen);
    let failed = 0;

    let resent = 0;
    for (const p of sends.filter((p) => chosen(key(p), p.pageId))) {
      let outcome: Awaited<ReturnType<typeof paging.pager.retryParked>>;
      try {
        outcome = await paging.pager.retryParked(p, Date.now());
      } catch (e) {
        // One send failing does not stop the others (each is its own page).
        failed++;
        out(`${key(p)}: not sent (${(e as Error).name}); it stays parked`);
        continue;
      }
      if (outcome === 'sent') resent++;
      else if (outcome === 'no-ladder') {
        failed++;
        out(
          `${key(p)}: not sent: its page's team has no ladder in the paging config; it stays parked: deploy a paging config that has the team, then retry it`,
        );
      } else if (outcome === 'unreachable') {
        failed++;
        out(
          `${key(p)}: not sent: its page's team has no endpoint in the paging config deployed (nobody would receive it); it stays parked: page the team by other means, and retry it once the team has an endpoint again`,
        );
      } else if (outcome === 'unreadable') {
        failed++;
        out(
          `${key(p)}: not sent: its page's stored item cannot be read; it stays parked: mend or delete the page item (the escalate log's "pages set aside" says what is wrong), then retry it`,
        );
      } else if (outcome === 'deferred') {
        resent++;
        out(
          `${key(p)}: SNS is down: its page is stored unsent again, and the escalate function sends it once SNS is back`,
        );
      } else if (outcome === 'down') {
        failed++;
        out(`${key(p)}: not sent (SNS is down); it stays parked: retry it once SNS is back`);
      } else if (outcome === 'parked') out(`${key(p)}: SNS refused it again: parked again`);
      else out(`${key(p)}: not sent (its page no longer exists)`);
    }
    if (sns) out(`${resent} parked send(s) sent again (or taken back by their page) at ${iso(Date.now())}`);

    // The notifier's own delivery, with the operator's credentials: a record pages once however often it comes.
    const delivery = () =>
      new OutboxDelivery({
        paging: async () => ({
          pager: paging.pager,
          parkedRecords: paging.parkedRecords,
          ...(paging.sender ? { remember: (n) => paging.sender!.remember(n) } : {}),
        }),
        now: Date.now,
        log: (level, message, logIds) => {
          if (level !== 'info') err(`crs outbox: ${message} ${JSON.stringify(logIds)}`);
        },
        restoredAt: paging.restoredAt,
      });
    let paged = 0;
    for (const r of records.filter((r) => chosen(recordId(r), r.key))) {
      try {
        const outcome = await delivery().deliver(JSON.parse(r.image) as never);
        if (outcome === 'parked') {
          out(`${recordId(r)}: parked again (${r.reason})`);
          continue;
        }
        await paging.parkedRecords.remove(r.key);
        paged++;
      } catch (e) {
        failed++;
        out(`${recordId(r)}: not paged (${(e as Error).name}); it stays parked`);
      }
    }
    let ranges = 0;
    for (const f of failures) {
      if (!chosen(f.id)) continue;
      try {
        const counts = await failuresQueue.redrive(f, streams, delivery());
        await failuresQueue.remove(sqs, queueUrl!, f);
        ranges++;
        out(`${f.id}: read from the stream again: ${counts.paged + counts.deferred} paged, ${counts.parked} parked`);
      } catch (e) {
        failed++;
        out(`${f.id}: not paged (${(e as Error).name}: ${(e as Error).message}); it stays on NotifyFailures`);
      }
    }
    if (notify) out(`${paged} parked record(s) and ${ranges} stream range(s) paged again at ${iso(Date.now())}`);
    return missing.length > 0 || failed > 0 || unreadableChosen.length > 0 ? 1 : 0;
  } finally {
    // What was read and not done shows again to the next reader (deleted ones are gone).
    for (const f of failures) await failuresQueue.release(sqs, queueUrl!, f).catch(() => undefined);
    sqs.destroy();
    streams.destroy();
    paging.close();
  }
}
