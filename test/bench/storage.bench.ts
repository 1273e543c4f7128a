// Disk use of `crs serve` (its own process, as an operator runs it): a ward's day through the real server (the cost
// model's feed, test/cost/feed.ts: vitals every minute, neuro checks and oxygen every 4 h, a fever in two patients
// of three, paged), then the database's bytes by table (SQLite's dbstat), per message and per patient-day, the WAL's
// largest size while it ran, and a year at 100 patients sending every minute projected from them. Measured, not
// asserted. STORAGE_PATIENTS and STORAGE_HOURS change the ward (100 patients, 24 hours by default).
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { DeviceMessage } from '#domain/contract.ts';
import { INGEST_TOKEN, health, spawnServe, stop, type ServeProcess } from '#test/integration/embedded-support.ts';
import { wardFeed } from '../cost/feed.ts';
import { postMessages } from './post.ts';

const PATIENTS = Number(process.env.STORAGE_PATIENTS ?? 100);
const HOURS = Number(process.env.STORAGE_HOURS ?? 24);
const YEAR_MESSAGES = 100 * 60 * 24 * 365;
/** Messages sent one at a time, each graded before the next, while a reader holds a snapshot. */
const WAL_PACED = 300;

/**
 * What each table is for, as its retention says: kept for good (the audit trail, the identities of every message
 * applied, the patients' states, the pages), bounded per patient (the timeline), or dropped after the retention
 * (shared/adapters/sqlite/retention.ts). Each table is counted with its indexes.
 */
const KEPT: Record<string, string> = {
  audit: 'kept for good',
  seen_messages: 'kept for good',
  patients: 'kept for good',
  pages: 'kept for good',
  timeline: '14 days of each patient',
  outbox: 'the retention (30 days)',
  deliveries: 'the retention (30 days)',
  silences: 'the retention (30 days)',
  ack_links: 'the retention (30 days)',
  stale_feed_members: "while its ward's alert is in force",
  stale_feed_resumed: "while its ward's alert is in force (the newest 20 of each)",
  stale_feed_said: "while its ward's alert is in force (one row each)",
  inbox: 'until graded',
};

const agent = new Agent({ keepAlive: true, maxSockets: 16 });
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const gb = (n: number) => `${(n / 1e9).toFixed(1)} GB`;

/** The cost model's ward, moved so that its last reading is a minute ago (the ingest refuses the future). */
function feed(): DeviceMessage[] {
  const messages = wardFeed(PATIENTS, HOURS, 60);
  const last = messages.reduce((t, m) => Math.max(t, Date.parse(m.observedAt)), 0);
  const shift = Date.now() - 60_000 - last;
  const moved = (t: string) => new Date(Date.parse(t) + shift).toISOString();
  return messages.map((m) => ({
    ...m,
    observedAt: moved(m.observedAt),
    ...(m.enrolment?.infusedAt ? { enrolment: { ...m.enrolment, infusedAt: moved(m.enrolment.infusedAt) } } : {}),
  }));
}

/** Ten gateways, each with its share of the patients, POSTing batches of 100 in arrival order. */
async function send(s: ServeProcess, messages: DeviceMessage[]): Promise<void> {
  const gateways: DeviceMessage[][] = Array.from({ length: 10 }, () => []);
  for (const m of messages) gateways[Number(m.patientId.slice(-4)) % 10]!.push(m);
  await Promise.all(
    gateways.map(async (list) => {
      for (let i = 0; i < list.length; i += 100) {
        const status = await postMessages(s.url, agent, INGEST_TOKEN, list.slice(i, i + 100));
        if (status !== 202) throw new Error(`HTTP ${status}`);
      }
    }),
  );
}

async function settled(s: ServeProcess): Promise<void> {
  for (;;) {
    const h = await health(s);
    if (h.inbox === 0 && Object.values(h.undelivered).every((n) => n === 0)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface TableUse {
  name: string;
  bytes: number;
  rows: number;
}

/** Every table's pages with its indexes' (dbstat), and its rows, as a reader sees the database (WAL included). */
function tableUse(file: string): TableUse[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare(
        `SELECT s.tbl_name AS name, sum(d.pgsize) AS bytes FROM dbstat d JOIN sqlite_schema s ON s.name = d.name
         WHERE s.tbl_name NOT LIKE 'sqlite_%' GROUP BY s.tbl_name ORDER BY bytes DESC`,
      )
      .all() as { name: string; bytes: number }[];
    return rows.map((r) => ({ ...r, rows: db.prepare(`SELECT count(*) FROM "${r.name}"`).pluck().get() as number }));
  } finally {
    db.close();
  }
}

const size = (f: string) => (existsSync(f) ? statSync(f).size : 0);

export async function run(): Promise<void> {
  const messages = feed();
  const patientDays = (PATIENTS * HOURS) / 24;
  console.log(
    `\n== crs serve disk use: ${PATIENTS} patients for ${HOURS} h (${messages.length.toLocaleString('en-US')} messages, the cost model's ward) ==`,
  );
  const dir = mkdtempSync(join(tmpdir(), 'crs-storage-bench-'));
  const file = join(dir, 'crs.db');
  const server = await spawnServe(dir);
  let walMax = 0;
  const watch = setInterval(() => {
    walMax = Math.max(walMax, size(`${file}-wal`));
  }, 20);
  try {
    const t0 = Date.now();
    await send(server, messages);
    await settled(server);
    clearInterval(watch);
    const pages = server.lines.filter((l) => l.includes('"type":"notification"')).length;
    console.log(
      `graded and delivered in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${pages} grade changes paged; ` +
        `WAL at most ${mb(walMax)} while it ran (checkpoints every 1,000 pages: about 4 MB)`,
    );
    const use = tableUse(file);
    const total = use.reduce((n, t) => n + t.bytes, 0);
    const per = (n: number) => (n / messages.length).toFixed(0);
    console.log('table (with its indexes)      size     rows  bytes/message  per patient-day  kept');
    for (const t of use) {
      if (t.bytes <= 8192) continue;
      console.log(
        `${t.name.padEnd(24)} ${mb(t.bytes).padStart(9)} ${String(t.rows).padStart(8)} ${per(t.bytes).padStart(14)} ${mb(t.bytes / patientDays).padStart(16)}  ${KEPT[t.name] ?? ''}`,
      );
    }
    const sum = (kept: string) => use.filter((t) => KEPT[t.name] === kept).reduce((n, t) => n + t.bytes, 0);
    const forGood = sum('kept for good');
    const timeline = sum('14 days of each patient');
    const reading = new Database(file, { readonly: true });
    const free = (reading.pragma('freelist_count', { simple: true }) as number) * 4096;
    reading.close();
    console.log(`free pages: ${mb(free)} (reused by later writes: the file never shrinks, crs serve runs no VACUUM)`);
    console.log(
      `all: ${mb(total)}: ${per(total)} bytes a message, ${mb(total / patientDays)} a patient-day; kept for good ${per(forGood)} bytes a message, the timeline ${per(timeline)}`,
    );
    // A year of 100 beds at one message a minute. What is kept for good grows with every message; the timeline
    // keeps the last 14 days of each patient, which for stays of 14 days or less is all of them.
    const year = (n: number) => (n / messages.length) * YEAR_MESSAGES;
    console.log(
      `a year at 100 patients x 1 message/min (${(YEAR_MESSAGES / 1e6).toFixed(1)} M messages): ${gb(year(forGood))} kept for good, ` +
        `plus the timeline: ${gb(year(timeline) * (14 / 365))} with the same 100 patients all year, up to ${gb(year(timeline))} when each stays 14 days or less`,
    );

    // The WAL at a ward's pace (each message its own commit and grading pass) while a reader holds one moment of
    // the database, as crs backup's VACUUM INTO does: nothing can be checkpointed, every commit is appended.
    const reader = new Database(file, { readonly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM patients').get();
    const wal0 = size(`${file}-wal`);
    const paced = feed().slice(-WAL_PACED);
    const graded0 = (await health(server)).graded;
    for (const [i, m] of paced.entries()) {
      const status = await postMessages(server.url, agent, INGEST_TOKEN, { ...m, messageId: `paced-${m.messageId}` });
      if (status !== 202) throw new Error(`HTTP ${status}`);
      while ((await health(server)).graded < graded0 + i + 1) await new Promise((r) => setTimeout(r, 2));
    }
    const perMessage = (size(`${file}-wal`) - wal0) / WAL_PACED;
    reader.exec('COMMIT');
    reader.close();
    console.log(
      `WAL at a ward's pace while a backup holds its snapshot: ${(perMessage / 1024).toFixed(0)} KB a message ` +
        `(a 10-minute backup at 100 messages/min: ${mb(perMessage * 1000)}), cut back to 8 MB at the next checkpoint once it ends`,
    );
    await send(
      server,
      feed()
        .slice(0, 20_000)
        .map((m) => ({ ...m, messageId: `after-${m.messageId}` })),
    );
    await settled(server);
    console.log(`WAL after 20,000 more messages: ${mb(size(`${file}-wal`))}`);
  } finally {
    clearInterval(watch);
    agent.destroy();
    await stop(server);
    console.log(
      `after a clean stop (and the WAL runs above): crs.db ${mb(size(file))}, WAL ${mb(size(`${file}-wal`))}`,
    );
    rmSync(dir, { recursive: true, force: true });
  }
}
