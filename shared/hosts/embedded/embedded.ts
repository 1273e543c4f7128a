// The whole pipeline in one process on SQLite: HTTP ingest -> inbox -> grading worker -> outbox -> pager (ladders,
// acknowledgements, silences, alerts, audit) and stdout, board, webhook. `crs serve`, `crs start`, the tests and the
// benchmark all start it through startEmbeddedServer.
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { BoardQueries } from '#adapters/sqlite/board.ts';
import { DB_FILE, lockDataDir, openDataDir, type Db } from '#adapters/sqlite/db.ts';
import { secureDataDir } from '#adapters/sqlite/files.ts';
import { OutboxDispatcher, type LaneRetry, type Sink } from '#adapters/sqlite/outbox.ts';
import { DEFAULT_RETENTION_DAYS, RetentionSweep, type Dropped } from '#adapters/sqlite/retention.ts';
import { SqliteQueue } from '#adapters/sqlite/queue.ts';
import { SqliteStateStore } from '#adapters/sqlite/store.ts';
import { applyRestore, lastRestore, type Restore } from '#adapters/sqlite/restores.ts';
import { SqliteAlertsTold } from '#adapters/sqlite/alerts-told.ts';
import { deadLetterCount, listDeadLetters, redriveDeadLetters } from '#adapters/sqlite/dead-letters.ts';
import { DEFAULT_MAX_PATIENTS, SqlitePatientDirectory } from '#adapters/sqlite/patients.ts';
import { SqliteTokenStore } from '#adapters/sqlite/tokens.ts';
import { localTokenHostProblem, localTokenProblem, testClockHostProblem } from '#app/auth.ts';
import { loadInterfaceRoutes } from '#app/interfaces/http.ts';
import type { SiteDrugCodes } from '#app/interfaces/terminology.ts';
import type { AckKeys } from '#app/ack.ts';
import { restoredFromOf } from '#app/ack-flow.ts';
import type { Principal } from '#app/scope.ts';
import type { MessageQueue } from '#ports';
import { refusedAsReplaced, replacementOf, tokenExpired, tokenPrincipal } from '#app/auth.ts';
import { GradingWorker } from './worker.ts';
import { UNKNOWN_RELEASE } from '#app/release.ts';
import { gradingSettingsId, settingsAtStart } from '#domain/settings-id.ts';
import type { GradingConfig } from '#domain/config.ts';
import { MAX_OBSERVATION_AGE_VARIABLE, maxObservationAgeSetting } from '#domain/device-clock.ts';
import type { SiteZone } from '#app/interfaces/zone.ts';
import { ackKeyFilesSource, loadAckKeys } from './ack-key.ts';
import { BoardApi } from './board-api.ts';
import { loadOrCreateBoardKey } from './board-key.ts';
import { CeilingWatchedDirectory } from './ceiling.ts';
import { DeliveryWatch } from './delivery-watch.ts';
import { Heartbeat } from './heartbeat.ts';
import { AlertWebhook, type AlertWebhookOptions } from './alert-webhook.ts';
import { createRequestHandler } from './http.ts';
import { DEFAULT_HTTP_LIMITS, guardConnections, normalise, type HttpLimits } from './limits.ts';
import { oneLine } from './log-line.ts';
import { CountingSecurityLog, FileSecurityLog } from './security-log.ts';
import { startMllpListener, type MllpListener } from './mllp.ts';
import type { MllpTls } from '../mllp-tls.ts';
import { EmbeddedPaging } from './paging.ts';
import { BoardSink, StdoutSink, WebhookSink } from './sinks.ts';
import { SseHub } from './sse.ts';
import { clockParameter } from '../test-clock.ts';

export interface EmbeddedOptions {
  dataDir: string;
  config: GradingConfig;
  /** Which release runs (releaseOfCheckout, said by /api/health); UNKNOWN_RELEASE when not given. */
  release?: string;
  port?: number;
  host?: string;
  /**
   * Accepted as a device token for local use (CRS_INGEST_TOKEN): at least 32 characters, with every right (an EHR's),
   * and only when the server listens on loopback unless `localTokenAnyHost`.
   */
  localToken?: string;
  /** Accept CRS_INGEST_TOKEN on a listener other hosts can reach (crs serve --ingest-token-any-host). */
  localTokenAnyHost?: boolean;
  /** Reverse proxies (addresses) whose X-Forwarded-For and X-Forwarded-Proto are believed (--trust-proxy). */
  trustProxy?: string[];
  /** Connection caps, timeouts and the refusal budget (DEFAULT_HTTP_LIMITS). */
  httpLimits?: Partial<HttpLimits>;
  /** The webhook lane: `retry` its backoff while the receiver is down (1 s doubling to 60 s) and between refusals. */
  webhook?: { url: string; secret?: string; retry?: LaneRetry };
  /** Where the NDJSON page stream goes (standard output by default). */
  pageStream?: Writable;
  /** Also print each page to a role on the stream ({"type":"page",...}, with its acknowledge link). */
  pageLines?: boolean;
  /** The address phones reach this server at (behind the TLS proxy), for acknowledge links; the listening URL by default. */
  publicUrl?: string;
  log?: (line: string) => void;
  now?: () => number;
  /**
   * Test hook (crs serve with CRS_TEST_CLOCK=1): the server's wall clock is real time plus a step a test sets with
   * POST /local/clock?stepMs=N (N may be negative), as an NTP step or an operator's fix moves the host's clock;
   * the monotonic clock (performance.now) is not moved.
   */
  testClock?: boolean;
  /** Also take HL7 v2 over MLLP on this port (same host); 0 for any free port. */
  mllpPort?: number;
  /** The site's zone for HL7 times sent without an offset. */
  hl7Zone?: SiteZone;
  /** The site's patient authority (PID-3.4): its PID-3 repetition is the patient (shared/app/hl7v2/pcd01.ts). */
  hl7PatientAuthority?: string;
  /** The site's FHIR patient system: the identifier of that system is the patient (shared/app/fhir/translate.ts). */
  fhirPatientSystem?: string;
  /** The site's FHIR drug codes (shared/app/interfaces/drug-codes.ts), read before the built-in table. */
  fhirDrugCodes?: SiteDrugCodes;
  /** The MLLP listener acts as this device (the scope of its active token); without it, as a monitor for every patient. */
  mllpDevice?: string;
  /**
   * MLLP inside TLS with client certificates the CA signed (shared/hosts/mllp-tls.ts): each connection acts as the
   * device its certificate's subject CN names, with that device's token scope. Not with mllpDevice.
   */
  mllpTls?: MllpTls;
  /** The most patients with recent data the server takes (new ones beyond are refused); DEFAULT_MAX_PATIENTS. */
  maxPatients?: number;
  /** Days delivered records, ended silences and expired links are kept (DEFAULT_RETENTION_DAYS; retention.ts). */
  retentionDays?: number;
  /** A message whose grading fails is tried again after this, ms, doubling (3 tries in all; 1 s: WORKER_LIMITS). */
  gradingRetryMs?: number;
  /** How long before its arrival an observedAt may be (shared/domain/device-clock.ts's default otherwise). */
  maxObservationAgeMs?: number;
  /** Hours a patient whose monitoring ended stays on the board's list with nothing open (DEFAULT_ENDED_HOURS). */
  boardEndedHours?: number;
  /** A dead man's switch: GET `url` every `everyMs` while the server is healthy (heartbeat.ts). */
  heartbeat?: { url: string; everyMs: number; timeoutMs?: number };
  /**
   * Each delivery-watch alert raised and cleared POSTed to `url` (alert-webhook.ts), signed with `secret`; `server`
   * names this server in them (crs serve --public-url).
   */
  alertWebhook?: Omit<AlertWebhookOptions, 'now' | 'log' | 'told'>;
  /** How often the board's live stream is pinged (15 s): the board says the server is lost after 4 pings missed. */
  ssePingMs?: number;
}

export interface EmbeddedServer {
  url: string;
  /** The board's link with its key: at `publicUrl` when one is given, else at `url`. */
  boardUrl: string;
  port: number;
  /** The MLLP port, when --mllp-port was given. */
  mllpPort?: number;
  dataDir: string;
  db: Db;
  queue: SqliteQueue;
  worker: GradingWorker;
  dispatcher: OutboxDispatcher;
  paging: EmbeddedPaging;
  watch: DeliveryWatch;
  /** With `heartbeat`: its beats sent, held back and failed. */
  heartbeat?: Heartbeat;
  /** With `alertWebhook`: its events sent, failed, refused and dropped. */
  alertWebhook?: AlertWebhook;
  tokens: SqliteTokenStore;
  /** Drops now what is past the retention (the server does so at start and every hour). */
  sweepRetention(): Promise<Dropped>;
  /** Stops taking requests, lets the work in flight finish, closes the database. Idempotent. */
  close(): Promise<void>;
}

/**
 * The server's URL for clients on this machine (the board link it prints, serve.json, the acknowledge links' base
 * without --public-url): an IPv6 address in brackets, and 0.0.0.0 (every IPv4 address, which is no address to
 * connect to: browsers refuse it) as 127.0.0.1, one of the addresses it then listens on; `::` likewise as ::1.
 */
export function ownUrl(host: string, port: number): string {
  const local = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const shown = local.includes(':') ? `[${local}]` : local;
  return `http://${shown}:${port}`;
}

export async function startEmbeddedServer(o: EmbeddedOptions): Promise<EmbeddedServer> {
  const write = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const log = (line: string) => write(oneLine(line));
  const stepped = { ms: 0 };
  const wall = o.now ?? Date.now;
  const now = o.testClock ? () => wall() + stepped.ms : wall;
  // How far before its arrival an observedAt may be, on every path of this server: the option
  // (--max-observation-age-days), else CRS_MAX_OBSERVATION_AGE_DAYS, else 7 days (shared/domain/device-clock.ts).
  const maxObservationAgeMs =
    o.maxObservationAgeMs ?? maxObservationAgeSetting(process.env[MAX_OBSERVATION_AGE_VARIABLE]);
  const dataDir = resolve(o.dataDir);
  const host = o.host ?? '127.0.0.1';
  // Loaded now, not at their first request: by then the build this process runs from may have been replaced.
  await loadInterfaceRoutes();
  if (o.localToken !== undefined) {
    const problem = localTokenProblem(o.localToken);
    if (problem) throw new Error(problem);
    const where = localTokenHostProblem(host, o.localTokenAnyHost === true);
    if (where) throw new Error(where);
  }
  const clockProblem = o.testClock ? testClockHostProblem(host) : undefined;
  if (clockProblem) throw new Error(clockProblem);
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...o.httpLimits };
  // Patient data and keys: owner-only, fixed (and said) when an existing directory let others read it.
  for (const change of secureDataDir(dataDir))
    log(`crs serve: made private (others could read patient data): ${change}`);
  const trustProxy = (o.trustProxy ?? []).map(normalise);
  let lock: { release(): void };
  try {
    lock = lockDataDir(dataDir);
  } catch (err) {
    throw dataDirUnusable(dataDir, 'serve.lock', err);
  }
  let db: Db;
  let restore: Restore | undefined;
  try {
    db = openDataDir(dataDir);
    // The first start on a copy crs backup made is the restore (restores.ts): said now, and by the watch for an hour.
    restore = applyRestore(db, now());
    if (restore) log(`crs serve: ${restoreText(restore)}`);
    restore ??= lastRestore(db);
  } catch (err) {
    lock.release();
    throw dataDirUnusable(dataDir, DB_FILE, err);
  }

  const sse = new SseHub(o.ssePingMs);
  const store = new SqliteStateStore(db, restore?.restoredAt);
  // Which grading settings it grades under, and the patients last graded under others (the site changed --config):
  // ids, counts and setting names only (2026-12-07).
  log(`crs serve: ${settingsAtStart(o.config, store.gradedUnder())}`);
  const tokens = new SqliteTokenStore(db);
  let ackKeys: AckKeys;
  try {
    ackKeys = loadAckKeys(dataDir);
  } catch (err) {
    db.close();
    lock.release();
    throw err;
  }
  // Refusals past an address's budget are counted, not written: each count reaches the file within a flush period.
  const security = new CountingSecurityLog(new FileSecurityLog(dataDir), now);
  const flushSecurity = () =>
    security
      .flush()
      .catch((err: Error) => log(`security log: a count of refusals not written failed to write (${err.name})`));
  // The acknowledge links' address is known once the port is; the pager reads it when it sends.
  const links = { base: o.publicUrl ? `${o.publicUrl.replace(/\/+$/, '')}/ack/` : '' };
  let dispatcher: OutboxDispatcher | undefined;
  const paging = new EmbeddedPaging({
    db,
    config: o.config,
    ackSecret: ackKeys.current,
    previousAckSecret: ackKeys.previous,
    // `crs ack-key rotate` and `drop-previous` take effect within seconds, without a restart.
    ackKeysSource: ackKeyFilesSource(dataDir, ackKeys, now(), log),
    ackBaseUrl: () => links.base,
    restoredAt: restore?.restoredAt,
    now,
    log,
    loadState: (patientId) => store.load(patientId),
    onSent: () => dispatcher?.kick(),
    onChanged: (patientIds) => sse.broadcast('pages', { patientIds }),
    security,
    watchClock: o.now === undefined || o.testClock === true,
    onClockStep: () => watch.check(),
    // Said as the ladder runs out (and cleared as it is answered), not at the watch's next look.
    onExhausted: () => watch.check(),
    onFirstTick: () => watch.check(),
  });
  const queries = new BoardQueries(db, paging.store);
  const sinks: Sink[] = [
    new StdoutSink(o.pageStream ?? process.stdout, o.pageLines ?? false),
    paging.sink(),
    new BoardSink(sse),
  ];
  if (o.webhook)
    sinks.push(
      new WebhookSink(o.webhook.url, o.webhook.secret, (id) => paging.sender.notificationOf(id), o.webhook.retry),
    );
  dispatcher = new OutboxDispatcher(db, sinks, { now, log, onParked: () => watch.check() });
  // What it told raised is remembered in the database: a clear missed at a stop is sent at the next start.
  const told = new SqliteAlertsTold(db);
  const alertWebhook = o.alertWebhook && new AlertWebhook({ ...o.alertWebhook, now, log, told });
  const watch: DeliveryWatch = new DeliveryWatch({
    lanes: () => dispatcher!.health(),
    lastTickAt: () => paging.lastTickAt,
    // Known from the pager's first tick, which comes after the watch's first look.
    setAside: () => (paging.ticked ? paging.setAside : undefined),
    // Why it waits, when the database refuses its writes (a full disk): the alert says what to do, not only how late.
    inbox: () => {
      const code = worker.cannotWrite();
      const advice = code && diskAdvice(dataDir, code);
      return {
        ...queue.backlog(),
        cannotWrite:
          code && `the database cannot write (${code})${advice ? `: ${advice}; grading resumes by itself` : ''}`,
      };
    },
    deadLetters: () => deadLetterCount(db).count,
    clock: () => paging.clockAlert(),
    restored: () =>
      restore && now() < restore.restoredAt + RESTORE_ALERT_MS
        ? { text: restoreText(restore), since: restore.restoredAt }
        : undefined,
    ingest: () => ingestRefused,
    ceiling: () => patients.current(),
    exhausted: () =>
      paging.exhaustedPages().map((p) => ({
        pageId: p.pageId,
        notificationId: p.notificationId,
        patientId: p.patientId,
        team: p.team,
        subject: p.subject,
        grade: p.grade,
        exhaustedAt: p.closedAt ?? now(),
      })),
    deliveryAlertMinutes: o.config.paging.deliveryAlertMinutes,
    now,
    log,
    onChange: () => sse.broadcast('lanes', {}),
    ...(alertWebhook
      ? {
          onAlert: (event, alert) => alertWebhook.tell(event, alert),
          onLooked: (standing) => alertWebhook.clearGone(standing),
          toldBefore: () => told.open(),
        }
      : {}),
  });
  const worker = new GradingWorker({
    db,
    store,
    config: o.config,
    now,
    log,
    onCommitted: ({ patients, pages }) => {
      if (patients.length > 0) sse.broadcast('patients', { patientIds: patients });
      if (pages > 0) dispatcher.kick();
      paging.committed(patients);
    },
    onDeadLettered: () => watch.check(),
    ...(o.gradingRetryMs !== undefined ? { retryBaseMs: o.gradingRetryMs } : {}),
  });
  const queue = new SqliteQueue(db, () => worker.kick());
  // Devices told 503 because the database cannot take their messages (a full disk): until 2026-12-06 nothing said
  // so, not standard error, the banner, /api/health nor the alert webhook, and the heartbeat beat on. Said until a
  // message is taken again.
  let ingestRefused: string | undefined;
  const intake: MessageQueue = {
    enqueue: async (messages) => {
      try {
        await queue.enqueue(messages);
      } catch (err) {
        const code = (err as { code?: string }).code ?? (err as Error).name;
        const advice = diskAdvice(dataDir, code);
        const was = ingestRefused;
        ingestRefused = `devices' messages are refused (503, nothing accepted; they send again): the database cannot take them (${code})${advice ? `: ${advice}` : ''}`;
        if (was === undefined) log(`ingest: ${ingestRefused}`);
        watch.check();
        throw err;
      }
      if (ingestRefused === undefined) return;
      ingestRefused = undefined;
      log('ingest: the database takes messages again');
      watch.check();
    },
  };
  const boardKey = loadOrCreateBoardKey(dataDir);
  const patients = new CeilingWatchedDirectory(new SqlitePatientDirectory(db, now), now, () => watch.check());
  const maxPatients = o.maxPatients ?? DEFAULT_MAX_PATIENTS;
  // How HL7 v2 is read, the same on the HTTP route and the MLLP listener.
  const zone = {
    maxObservationAgeMs,
    ...(o.hl7Zone ? { hl7Zone: o.hl7Zone } : {}),
    ...(o.hl7PatientAuthority !== undefined ? { hl7PatientAuthority: o.hl7PatientAuthority } : {}),
  };

  const handler = createRequestHandler({
    ingest: {
      queue: intake,
      tokens,
      now,
      patients,
      maxPatients,
      ...(o.localToken ? { localToken: o.localToken } : {}),
      ...zone,
      ...(o.fhirPatientSystem !== undefined ? { fhirPatientSystem: o.fhirPatientSystem } : {}),
      ...(o.fhirDrugCodes !== undefined ? { fhirDrugCodes: o.fhirDrugCodes } : {}),
      onUnavailable: (err) => log(`ingest: answered 503, a store failed (${(err as Error).name})`),
    },
    board: new BoardApi(queries, o.config, now, o.boardEndedHours, o.retentionDays),
    queries,
    paging,
    outbox: {
      lanes: () => dispatcher!.health(),
      parked: () => dispatcher!.parked(),
      alerts: () => watch.current(),
      retry: (sink, itemId) => {
        const n = dispatcher!.retryParked(sink, itemId);
        if (n > 0) log(`outbox: ${n} parked record(s) put back in their lanes`);
        watch.check();
        return n;
      },
    },
    deadLetters: {
      list: () => listDeadLetters(db),
      redrive: (id) => {
        const n = redriveDeadLetters(db, id);
        if (n > 0) {
          log(`grading: ${n} dead-lettered message(s) put back in the inbox (redriven), graded next`);
          worker.kick();
          watch.check();
        }
        return n;
      },
    },
    pagingConfig: o.config.paging,
    timeZone: o.config.site.timeZone,
    // Links sent after the backup are not known: said to whoever opens one, while one sent before the restore lives.
    restoredFrom: () => restoredFromOf(restore, now(), o.config.paging.ackLinkMinutes),
    audit: paging.audit,
    sse,
    boardKey,
    now,
    log,
    security,
    trustProxy,
    limits,
    ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}),
    health: () => ({
      release: o.release ?? UNKNOWN_RELEASE,
      // The id of the grading settings it grades under (the audit trail's assessments name it: 2026-12-07).
      gradingSettings: gradingSettingsId(o.config),
      ...queries.counts(),
      graded: worker.stats.applied,
      duplicates: worker.stats.duplicates,
      reusedIds: worker.stats.reusedIds,
      undelivered: Object.fromEntries(sinks.map((s) => [s.name, dispatcher.backlog(s.name)])),
      lanes: dispatcher.health(),
      deliveryAlerts: watch.current(),
      // Pages nobody acknowledged, every level and loop paged (AWS: the LaddersExhausted alarm); alerts above too.
      exhaustedLadders: watch.exhaustedLadders(),
      // New patients turned away for --max-patients (their senders told 503), null when none: the alert above too.
      newPatientsRefused: patients.current() ?? null,
      boardClients: sse.size,
    }),
  });
  const server: Server = createServer(
    { connectionsCheckingInterval: limits.checkIntervalMs },
    o.testClock ? withTestClock(handler, stepped, now) : handler,
  );
  server.keepAliveTimeout = 65_000;
  let capped = 0;
  guardConnections(server, limits, trustProxy, () => {
    if (capped++ % 100 === 0)
      log(`http: connections over the per-address cap (${limits.maxConnectionsPerAddress}) refused (${capped} so far)`);
  });
  let mllp: MllpListener | undefined;
  try {
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(o.port ?? 8080, host, () => {
        server.off('error', rej);
        res();
      });
    });
    if (o.mllpPort !== undefined) {
      if (o.mllpTls && o.mllpDevice !== undefined)
        throw new Error(
          '--mllp-device is for a plain MLLP listener: over TLS (--mllp-tls-cert, --mllp-tls-key, --mllp-tls-ca) each client certificate names its device (its subject CN)',
        );
      // Any --mllp-device given, empty too, is a device (as openMllpWarning reads it): an empty one was no device until
      // 2026-12-06, the listener a monitor for every patient while crs serve warned of nothing.
      // Over TLS each certificate names its device (checked for each message, as the one of --mllp-device).
      const principal =
        o.mllpDevice !== undefined
          ? { principal: await mllpPrincipal(tokens, o.mllpDevice, now), device: o.mllpDevice }
          : o.mllpTls
            ? { principal: devicePrincipal(tokens, now), tls: o.mllpTls }
            : {};
      // Marked as the MLLP listener's: `crs serve` names --mllp-port, not --port, when its port is in use.
      mllp = await startMllpListener({
        port: o.mllpPort,
        host,
        deps: { queue: intake, now, patients, maxPatients, ...zone },
        log,
        security,
        ...principal,
      }).catch((err: Error) => {
        throw Object.assign(err, { listener: 'mllp' });
      });
    }
  } catch (err) {
    if (server.listening) await new Promise<void>((res) => server.close(() => res()));
    sse.close();
    await dispatcher.stop();
    await paging.close();
    db.close();
    lock.release();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const url = ownUrl(host, port);

  if (!o.publicUrl) links.base = `${url}/ack/`;
  // The board's address people open: at --public-url (behind the TLS proxy) when there is one, as the acknowledge
  // links are. Its link adds the key.
  const board = `${o.publicUrl ? o.publicUrl.replace(/\/+$/, '') : url}/`;
  // Where this data directory's server answers, for the commands that go through it (crs silence), and its board's
  // address, for crs board-link (the key is not in it: board.key is).
  writeFileSync(join(dataDir, SERVE_INFO_FILE), `${JSON.stringify({ url, board, pid: process.pid })}\n`, {
    mode: 0o600,
  });

  // Whatever was accepted or committed before a crash is graded and delivered now, and the ladders resume.
  worker.kick();
  dispatcher.kick();
  paging.start();
  watch.start();
  // Healthy as /api/health tells it: no delivery alert, looked at afresh for each beat. A ladder nobody answered is
  // not the server's fault and does not hold it (the monitor would say the server is down when it is up).
  const heartbeat =
    o.heartbeat &&
    new Heartbeat({
      ...o.heartbeat,
      unhealthy: () => {
        watch.check();
        return watch.serverAlerts().map((a) => a.key);
      },
      log,
    });
  heartbeat?.start();
  const securityTimer = setInterval(flushSecurity, limits.refusalCountFlushMs);
  securityTimer.unref();
  // Delivered records, ended silences and expired links past the retention: at start, then every hour.
  const retention = new RetentionSweep(
    db,
    sinks.map((s) => ({ sink: s.name, kinds: s.kinds })),
  );
  const retentionDays = o.retentionDays ?? DEFAULT_RETENTION_DAYS;
  let sweeping: Promise<Dropped> | undefined;
  const sweepRetention = () =>
    (sweeping ??= retention
      .sweep(now(), retentionDays)
      .then((d) => {
        if (d.outbox + d.silences + d.ackLinks > 0)
          log(
            `retention: dropped ${d.outbox} delivered outbox record(s), ${d.silences} ended silence(s) and ${d.ackLinks} expired acknowledge link(s) older than ${retentionDays} days`,
          );
        return d;
      })
      .finally(() => {
        sweeping = undefined;
      }));
  const sweepQuietly = () =>
    void sweepRetention().catch((err: Error) =>
      log(`retention: sweep failed (${err.message}); tried again in an hour`),
    );
  const retentionTimer = setInterval(sweepQuietly, RETENTION_SWEEP_MS);
  retentionTimer.unref();
  sweepQuietly();

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await heartbeat?.stop(); // first: a server stopping is not a healthy one
      await mllp?.close(); // the messages in flight are committed and answered first
      const closed = new Promise<void>((res) => server.close(() => res()));
      sse.close();
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), 5000);
      await closed;
      clearTimeout(force);
      clearInterval(securityTimer);
      clearInterval(retentionTimer);
      await sweeping?.catch(() => undefined);
      await flushSecurity(); // no request is left to add to a count
      watch.stop();
      await alertWebhook?.stop();
      await worker.stop();
      await paging.stop();
      await dispatcher.stop();
      await paging.close(); // after what the last deliveries handed the pager
      db.close();
      rmSync(join(dataDir, SERVE_INFO_FILE), { force: true });
      lock.release();
    })());

  return {
    url,
    boardUrl: `${board}?key=${boardKey}`,
    port,
    ...(mllp ? { mllpPort: mllp.port } : {}),
    dataDir,
    db,
    queue,
    worker,
    dispatcher,
    paging,
    watch,
    ...(heartbeat ? { heartbeat } : {}),
    ...(alertWebhook ? { alertWebhook } : {}),
    tokens,
    sweepRetention,
    close,
  };
}

/** With the test clock: POST /local/clock?stepMs=N steps the server's wall clock by N ms (answers its time). */
function withTestClock(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  stepped: { ms: number },
  now: () => number,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://local');
    if (req.method !== 'POST' || url.pathname !== '/local/clock') return handler(req, res);
    const step = clockParameter(url, 'stepMs', -Infinity, 'a whole number of milliseconds');
    if ('error' in step) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: step.error }));
      return;
    }
    stepped.ms += step.ms;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ now: now() }));
  };
}

/** How often the retention sweep runs. */
const RETENTION_SWEEP_MS = 3_600_000;

/** How long the delivery watch says that the server runs on a backup, from the restore (across restarts too). */
const RESTORE_ALERT_MS = 3_600_000;

/**
 * What a server restored from a backup says (standard error at the restore, the delivery watch for an hour after):
 * which moment it holds, what the gateways must do, and what clinicians will see (docs/embedded.md, "Restoring").
 */
function restoreText(r: Restore): string {
  const taken = new Date(r.takenAt).toISOString();
  return `this data directory is a backup taken at ${taken} (crs backup), restored at ${new Date(r.restoredAt).toISOString()}: what was sent to crs serve after ${taken} is not in it: have every gateway send again what it sent since ${taken} (a message already here is taken as a repeat). Grade changes of that time are paged again, under new ids; acknowledgements, silences and device tokens given since then are not known: pages acknowledged then climb their ladders again, and a token revoked then works again (crs token list)`;
}

/**
 * The MLLP listener's principal with --mllp-device: the scope of the device's token, read for each message at the
 * server's clock (a revocation, an expiry or a new scope applies at once): the newest not expired. The device must
 * have a token not revoked when the server starts.
 */
async function mllpPrincipal(
  tokens: SqliteTokenStore,
  deviceId: string,
  now: () => number,
): Promise<(device: string | undefined) => Promise<Principal | { refused: string; tokenId: string } | undefined>> {
  if ((await tokens.unrevokedOfDevice(deviceId)).length === 0) {
    throw new Error(
      `--mllp-device ${deviceId}: no active token for this device; issue one first (crs token issue --device ${deviceId} --kind monitor [--ward W])`,
    );
  }
  return devicePrincipal(tokens, now);
}

/** A device's scope for its MLLP message: that of its newest unexpired token, at the server's clock. */
function devicePrincipal(
  tokens: SqliteTokenStore,
  now: () => number,
): (device: string | undefined) => Promise<Principal | { refused: string; tokenId: string } | undefined> {
  return async (deviceId) => {
    if (deviceId === undefined) return undefined;
    const at = new Date(now());
    const unrevoked = await tokens.unrevokedOfDevice(deviceId);
    // The newest not expired decides (a rotated device's old token, still in its overlap, is not chosen over its new
    // one); only it: a newest whose kind or wards this version cannot read is refused, never passed over for an
    // older scope. Decided as over HTTP, the refusal naming why; all expired: the newest's expiry.
    const token = unrevoked.find((t) => !tokenExpired(t, at)) ?? unrevoked[0];
    if (!token) return undefined;
    // A replaced one names the replacement taken now, as over HTTP (authenticate).
    const replacement = refusedAsReplaced(token, at) ? await replacementOf(token, tokens, at) : undefined;
    const auth = tokenPrincipal(token, at, 'embedded', replacement);
    return auth.ok ? auth.principal : { refused: auth.error, tokenId: token.tokenId };
  };
}

/** What to do when the data directory's disk refuses a write: full, or read-only (at the start and while running). */
function diskAdvice(dataDir: string, code: string): string | undefined {
  if (/^(SQLITE_FULL|ENOSPC)/.test(code)) return `the disk of ${dataDir} is full; free space on it (df -h ${dataDir})`;
  if (/^(SQLITE_READONLY|SQLITE_CANTOPEN|EROFS|EACCES|EPERM)/.test(code))
    return `it cannot be written (a read-only file system, or files not this user's); make ${dataDir} writable for this user`;
  return undefined;
}

/**
 * A data directory SQLite cannot open, read or write (damaged, not a database, read-only, its disk full, locked by
 * another program), said with its file, SQLite's code and what to do: "crs serve: file is not a database" and
 * "crs serve: database or disk is full" named neither (the latter seen at a start on a full disk, 2026-12-06).
 * What to do names `command`, the one that was run (until 2026-12-06 crs outbox was told to start crs serve again).
 */
export function dataDirUnusable(dataDir: string, name: string, err: unknown, command = 'crs serve'): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^(SQLITE_|ENOSPC$|EROFS$|EACCES$|EPERM$)/.test(code)) return err;
  const file = join(dataDir, name);
  const what = name === DB_FILE ? `the database ${file}` : `the file ${file}`;
  const advice = diskAdvice(dataDir, code);
  const serve = command === 'crs serve';
  const again = serve ? 'start crs serve again' : `run ${command} again`;
  const todo = advice
    ? `: ${advice}, then ${again}`
    : !/^SQLITE_(CORRUPT|NOTADB)/.test(code)
      ? ''
      : name === DB_FILE
        ? `: it is damaged or not a crs database; restore the data directory from a backup (crs backup), or ${serve ? 'start with' : `give ${command}`} another --data DIR`
        : `: it is damaged; with no crs serve running on the directory, delete it and ${again}`;
  const said = (err as Error).message;
  // Node's own errors begin with their code (EROFS: read-only file system, open '...'): said once.
  return new Error(`${what} cannot be used (${said.startsWith(code) ? said : `${code}: ${said}`})${todo}`);
}

/**
 * For a command that opens the database itself (crs token, outbox, dead-letters, audit, backup): a damaged one said
 * as crs serve says it, with what to do (they said SQLite's "file is not a database" alone); any other error as is.
 */
export function damagedDatabase(dataDir: string, err: unknown, command: string): unknown {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^SQLITE_(NOTADB|CORRUPT)/.test(code)
    ? dataDirUnusable(dataDir, DB_FILE, err, command)
    : err;
}

export const DEFAULT_DATA_DIR = '.crs';
/** `{"url", "board", "pid"}` of the server running on a data directory (left behind by a killed one: serveClient checks the lock and the pid). */
export const SERVE_INFO_FILE = 'serve.json';
