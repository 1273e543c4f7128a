import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoAuditLog, carriedEntries, writtenStamp } from '#adapters/aws/dynamo-audit-log.ts';
import { SqliteAuditLog } from '#adapters/sqlite/audit.ts';
import { DB_FILE, openDataDir } from '#adapters/sqlite/db.ts';
import { auditCsvHeader, auditCsvRow, auditNdjsonRow } from '#app/audit-export.ts';
import { MemoryAuditLog } from '#app/memory.ts';
import { AUDIT_SOURCES, auditCommand } from '#cli/audit.ts';
import type { AuditEvent } from '#ports';
import { FakeDynamo, PAGING_TABLES } from '#test/support/fake-dynamo.ts';

const event: AuditEvent = {
  at: '2026-11-26T10:05:00Z',
  patientId: 'P-1',
  type: 'acknowledgement',
  text: 'icu page acknowledged by Dr "Ann" O\'Neil, via link',
  details: { pageId: 'crs|P-1|m3|icu', by: 'Dr "Ann"', level: 1 },
};

describe('audit export', () => {
  it('writes NDJSON as stored', () => {
    expect(JSON.parse(auditNdjsonRow(event))).toEqual(event);
  });

  it('writes RFC 4180 CSV with quotes, commas and JSON details', () => {
    expect(auditCsvHeader()).toBe('at,patientId,type,text,details\r\n');
    expect(auditCsvRow(event)).toBe(
      '2026-11-26T10:05:00Z,P-1,acknowledgement,"icu page acknowledged by Dr ""Ann"" O\'Neil, via link","{""pageId"":""crs|P-1|m3|icu"",""by"":""Dr \\""Ann\\"""",""level"":1}"\r\n',
    );
  });

  it('neutralises cells a spreadsheet would run as a formula', () => {
    expect(auditCsvRow({ ...event, text: '=HYPERLINK("x")', details: {} })).toContain(`"'=HYPERLINK(""x"")"`);
    expect(auditCsvRow({ ...event, text: '-1', details: {} })).toContain(",'-1,");
  });
});

describe('a trail is read oldest first on every backend', () => {
  const ddb = new FakeDynamo(PAGING_TABLES);
  const dir = mkdtempSync(join(tmpdir(), 'crs-audit-order-'));
  afterAll(() => {
    ddb.restore();
    rmSync(dir, { recursive: true, force: true });
  });

  const at = (at: string, text: string, patientId = 'P-1'): AuditEvent => ({
    at,
    patientId,
    type: 'escalation',
    text,
    details: { text },
  });

  it('by time (whatever its offset), then the order written: also after a catch-up wrote older entries last', async () => {
    const db = openDataDir(dir);
    const backends = {
      memory: new MemoryAuditLog(),
      sqlite: new SqliteAuditLog(db),
      aws: new DynamoAuditLog(ddb.client(), 'audit', () => Date.parse('2026-11-26T12:00:00Z'), {
        seenTable: 'seen',
        stateTable: 'state',
      }),
    };
    const written = [
      [at('2026-11-26T11:00:00Z', 'the server is back'), at('2026-11-26T09:00:00Z', 'other patient', 'P-2')],
      // The catch-up tick after downtime: entries dated at the due times that passed meanwhile.
      [at('2026-11-26T10:05:00Z', 'due at 10:05'), at('2026-11-26T10:20:00Z', 'due at 10:20')],
      [at('2026-11-26T12:10:00+02:00', 'written with an offset (10:10 UTC)')],
      [at('2026-11-26T10:05:00.000Z', 'the same instant, written later')],
    ];
    const trails: Record<string, string[]> = {};
    for (const [name, log] of Object.entries(backends)) {
      for (const batch of written) await log.append(batch);
      trails[name] = [];
      for await (const e of log.forPatient('P-1')) trails[name].push(e.text);
    }
    db.close();
    const oldestFirst = [
      'due at 10:05',
      'the same instant, written later',
      'written with an offset (10:10 UTC)',
      'due at 10:20',
      'the server is back',
    ];
    expect(trails).toEqual({ memory: oldestFirst, sqlite: oldestFirst, aws: oldestFirst });
  });

  it('reads a long SQLite trail in pages, in order', async () => {
    const db = openDataDir(join(dir, 'long'));
    const log = new SqliteAuditLog(db);
    const start = Date.parse('2026-11-26T00:00:00Z');
    // 1,201 entries written newest first: every page boundary is crossed against the order written.
    await log.append(
      Array.from({ length: 1201 }, (_, i) => at(new Date(start + (1200 - i) * 1000).toISOString(), `s${1200 - i}`)),
    );
    const out: string[] = [];
    for await (const e of log.forPatient('P-1')) out.push(e.text);
    db.close();
    expect(out).toEqual(Array.from({ length: 1201 }, (_, i) => `s${i}`));
  });
});

describe('pinned by a mutation run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crs-audit-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** `crs audit export ARGS` in process: its exit status, standard output and standard error. */
  async function exportCli(...args: string[]) {
    let stdout = '';
    let stderr = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((c) => {
      stdout += String(c);
      return true;
    });
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((c) => {
      stderr += String(c);
      return true;
    });
    try {
      const status = await auditCommand(['export', ...args]);
      return { status, stdout, stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }

  const entry = (at: string, text: string, patientId = 'P-1'): AuditEvent => ({
    at,
    patientId,
    type: 'silence',
    text,
    details: { silenceId: text },
  });

  it('neutralises every cell a spreadsheet would run (=, +, -, @, tab, CR first) and quotes commas, quotes and line breaks', () => {
    const prefix = `${event.at},P-1,acknowledgement,`;
    const text = (t: string) => auditCsvRow({ ...event, text: t, details: {} }).slice(prefix.length, -',{}\r\n'.length);
    expect(['=1+1', '+1', '-1', '@SUM(A1)', '\t=1', 'a,b', 'say "hi"', 'a\nb', 'a\rb', 'plain -1'].map(text)).toEqual([
      "'=1+1",
      "'+1",
      "'-1",
      "'@SUM(A1)",
      "'\t=1",
      '"a,b"',
      '"say ""hi"""',
      '"a\nb"',
      '"a\rb"',
      'plain -1',
    ]);
  });

  it('a retried write stores an entry once and leaves it where it was: on SQLite, on DynamoDB and in memory (replay)', async () => {
    const ddb = new FakeDynamo(PAGING_TABLES);
    const db = openDataDir(join(dir, 'retry'));
    try {
      const logs = {
        sqlite: new SqliteAuditLog(db),
        aws: new DynamoAuditLog(ddb.client(), 'audit', () => Date.parse('2026-11-26T12:00:00Z'), {
          seenTable: 'seen',
          stateTable: 'state',
        }),
        memory: new MemoryAuditLog(),
      };
      const trails: Record<string, string[]> = {};
      for (const [name, log] of Object.entries(logs)) {
        const first = entry('2026-11-26T10:00:00Z', 'made');
        const second = entry('2026-11-26T10:00:00Z', 'ended');
        await log.append([first, second]);
        await log.append([first]); // the same write again (a retry after a timeout)
        // Written again with details its auditKey does not name (docs/paging.md: the same key is the same entry).
        await log.append([{ ...first, details: { ...first.details, retried: true } }]);
        trails[name] = [];
        for await (const e of log.forPatient('P-1')) trails[name].push(e.text);
      }
      expect(trails).toEqual({ sqlite: ['made', 'ended'], aws: ['made', 'ended'], memory: ['made', 'ended'] });
    } finally {
      db.close();
      ddb.restore();
    }
  });

  it('reads a DynamoDB trail with strongly consistent reads: an entry written a moment ago is in the export', async () => {
    const ddb = new FakeDynamo(PAGING_TABLES);
    try {
      const log = new DynamoAuditLog(ddb.client(), 'audit', () => 0, { seenTable: 'seen', stateTable: 'state' });
      await log.append([entry('2026-11-26T10:00:00Z', 'made')]);
      ddb.mock.resetHistory();
      for await (const _ of log.forPatient('P-1'));
      const reads = ddb.mock.calls().map((c) => c.args[0].input as { TableName?: string; ConsistentRead?: boolean });
      expect(reads.map((r) => [r.TableName, r.ConsistentRead])).toEqual([
        ['audit', true],
        ['state', true],
        ['seen', true],
      ]);
    } finally {
      ddb.restore();
    }
  });

  it('reads a DynamoDB trail longer than a Query page, from the audit and the seen-messages tables, whole and in order', async () => {
    const ddb = new FakeDynamo(PAGING_TABLES);
    ddb.pageSize = 10;
    try {
      const client = ddb.client();
      const log = new DynamoAuditLog(client, 'audit', () => 0, { seenTable: 'seen', stateTable: 'state' });
      const start = Date.parse('2026-11-26T00:00:00Z');
      const time = (i: number) => new Date(start + i * 1000).toISOString();
      // Even seconds in the audit table, odd ones carried by seen-messages items (one a message): 25 of each.
      await log.append(Array.from({ length: 25 }, (_, i) => entry(time(2 * i), `s${2 * i}`)));
      for (let i = 0; i < 25; i++) {
        const n = 2 * i + 1;
        const assessment: AuditEvent = {
          ...entry(time(n), `s${n}`),
          type: 'assessment',
          details: { messageId: `m${n}` },
        };
        await client.send(
          new PutItemCommand({
            TableName: 'seen',
            Item: {
              patientId: { S: 'P-1' },
              messageId: { S: `m${n}` },
              entries: carriedEntries('P-1', `m${n}`, [{ event: assessment, written: writtenStamp(0) }]),
            },
          }),
        );
      }
      const out: string[] = [];
      for await (const e of log.forPatient('P-1')) out.push(e.text);
      expect(out).toEqual(Array.from({ length: 50 }, (_, i) => `s${i}`));
    } finally {
      ddb.restore();
    }
  });

  it('a DynamoDB write that fails for any other reason than being stored already is not taken for done', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' });
    const client = { send: () => Promise.reject(throttled) } as unknown as DynamoDBClient;
    await expect(new DynamoAuditLog(client, 'audit').append([entry('2026-11-26T10:00:00Z', 'made')])).rejects.toBe(
      throttled,
    );
  });

  it('entries written in one millisecond keep the order written, past every power of ten of the counter', () => {
    const stamps = Array.from({ length: 20_000 }, () => writtenStamp(Date.parse('2026-11-26T10:00:00Z')));
    expect([...stamps].sort()).toEqual(stamps);
  });

  it('crs audit export prints every entry of the patient once, oldest first, and counts them', async () => {
    const data = join(dir, 'serve');
    const db = openDataDir(data);
    await new SqliteAuditLog(db).append([
      entry('2026-11-26T10:02:00Z', 'second'),
      entry('2026-11-26T10:01:00Z', 'other patient', 'P-2'),
      entry('2026-11-26T10:01:00Z', 'first'),
    ]);
    db.close();
    const ndjson = await exportCli('--patient', 'P-1', '--data', data);
    expect(ndjson.status).toBe(0);
    expect(
      ndjson.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).text),
    ).toEqual(['first', 'second']);
    expect(ndjson.stderr).toBe('crs audit: 2 entries for patient P-1\n');
    const csv = await exportCli('--patient', 'P-1', '--data', data, '--format', 'csv');
    expect(csv.status).toBe(0);
    expect(csv.stdout.split('\r\n')).toEqual([
      'at,patientId,type,text,details',
      '2026-11-26T10:01:00Z,P-1,silence,first,"{""silenceId"":""first""}"',
      '2026-11-26T10:02:00Z,P-1,silence,second,"{""silenceId"":""second""}"',
      '',
    ]);
    const one = await exportCli('--patient', 'P-2', '--data', data);
    expect(one.stderr).toBe('crs audit: 1 entry for patient P-2\n');
  });

  it('crs audit export lets go of its source when done, and when reading it fails says so in one line and exits 1', async () => {
    let closed = 0;
    const broken = new Error('throttled');
    AUDIT_SOURCES.test = async (o) => ({
      log: {
        append: async () => undefined,
        async *forPatient() {
          yield entry('2026-11-26T10:00:00Z', 'one');
          if (o.format === 'csv') throw broken;
        },
      },
      close: () => {
        closed++;
      },
    });
    try {
      expect((await exportCli('--patient', 'P-1', '--backend', 'test')).status).toBe(0);
      expect(closed).toBe(1);
      const cut = await exportCli('--patient', 'P-1', '--backend', 'test', '--format', 'csv');
      expect(cut.status).toBe(1);
      expect(cut.stderr).toBe(
        'crs audit: reading the trail failed after 1 entry: the export is incomplete (Error: throttled)\n',
      );
      expect(closed).toBe(2);
    } finally {
      delete AUDIT_SOURCES.test;
    }
  });

  it('crs audit export refuses a missing or empty patient, an unknown format or a data directory with no database', async () => {
    const data = join(dir, 'empty');
    openDataDir(data).close();
    const cases: [string[], string][] = [
      [[], '--patient P is required'],
      [['--patient', ''], '--patient P is required'],
      [['--patient', 'P-1', '--format', 'xml'], '--format must be ndjson or csv'],
    ];
    for (const [args, said] of cases) {
      const r = await exportCli(...args, '--data', data);
      expect({ status: r.status, stdout: r.stdout, said: r.stderr.split('\n')[0] }, args.join(' ')).toEqual({
        status: 2,
        stdout: '',
        said: expect.stringContaining(said),
      });
    }
    const none = await exportCli('--patient', 'P-1', '--data', join(dir, 'nothing-here'));
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('no crs database in');
    // A database of a crs from before the audit trail: refused, and left as it was (the export never migrates).
    const old = join(dir, 'old');
    mkdirSync(old);
    const db = new Database(join(old, DB_FILE));
    db.pragma('user_version = 1');
    db.close();
    const before = await exportCli('--patient', 'P-1', '--data', old);
    expect(before.status).toBe(2);
    expect(before.stderr).toContain('is from an older crs (schema 1)');
    const after = new Database(join(old, DB_FILE), { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(1);
    after.close();
  });
});
