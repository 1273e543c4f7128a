// The whole pipeline in one process on SQLite: HTTP ingest -> inbox -> grading worker -> outbox -> stdout, board,
// webhook. `crs serve`, `crs start`, the tests and the benchmark all start it through startEmbeddedServer.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { BoardQueries } from '../adapters/embedded/board.ts';
import { lockDataDir, openDataDir, type Db } from '../adapters/embedded/db.ts';
import { OutboxDispatcher, type Sink } from '../adapters/embedded/outbox.ts';
import { SqliteQueue } from '../adapters/embedded/queue.ts';
import { SqliteStateStore } from '../adapters/embedded/store.ts';
import { SqliteTokenStore } from '../adapters/embedded/tokens.ts';
import { GradingWorker } from '../adapters/embedded/worker.ts';
import type { GradingConfig } from '../domain/config.ts';
import { BoardApi } from './board-api.ts';
import { loadOrCreateBoardKey } from './board-key.ts';
import { createRequestHandler } from './http.ts';
import { BoardNotifier, StdoutNotifier, WebhookNotifier } from './sinks.ts';
import { SseHub } from './sse.ts';

export interface EmbeddedOptions {
  dataDir: string;
  config: GradingConfig;
  port?: number;
  host?: string;
  /** Accepted as a device token for local use (CRS_INGEST_TOKEN). */
  localToken?: string;
  webhook?: { url: string; secret?: string; retry?: { initialMs: number; maxMs: number } };
  /** Where the NDJSON page stream goes (standard output by default). */
  pageStream?: Writable;
  log?: (line: string) => void;
  now?: () => number;
}

export interface EmbeddedServer {
  url: string;
  boardUrl: string;
  port: number;
  dataDir: string;
  db: Db;
  queue: SqliteQueue;
  worker: GradingWorker;
  dispatcher: OutboxDispatcher;
  tokens: SqliteTokenStore;
  /** Stops taking requests, lets the work in flight finish, closes the database. Idempotent. */
  close(): Promise<void>;
}

export async function startEmbeddedServer(o: EmbeddedOptions): Promise<EmbeddedServer> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const now = o.now ?? Date.now;
  const dataDir = resolve(o.dataDir);
  const lock = lockDataDir(dataDir);
  let db: Db;
  try {
    db = openDataDir(dataDir);
  } catch (err) {
    lock.release();
    throw err;
  }

  const sse = new SseHub();
  const store = new SqliteStateStore(db);
  const tokens = new SqliteTokenStore(db);
  const queries = new BoardQueries(db);
  const sinks: Sink[] = [
    { name: 'stdout', notifier: new StdoutNotifier(o.pageStream ?? process.stdout) },
    { name: 'board', notifier: new BoardNotifier(sse) },
  ];
  if (o.webhook) {
    sinks.push({
      name: 'webhook',
      notifier: new WebhookNotifier(o.webhook.url, o.webhook.secret),
      ...(o.webhook.retry ? { retry: o.webhook.retry } : {}),
    });
  }
  const dispatcher = new OutboxDispatcher(db, sinks, { now, log });
  const worker = new GradingWorker({
    db,
    store,
    config: o.config,
    now,
    log,
    onCommitted: ({ patients, pages }) => {
      if (patients.length > 0) sse.broadcast('patients', { patientIds: patients });
      if (pages > 0) dispatcher.kick();
    },
  });
  const queue = new SqliteQueue(db, () => worker.kick());
  const boardKey = loadOrCreateBoardKey(dataDir);

  const handler = createRequestHandler({
    ingest: { queue, tokens, now, ...(o.localToken ? { localToken: o.localToken } : {}) },
    board: new BoardApi(queries, o.config, now),
    queries,
    sse,
    boardKey,
    now,
    log,
    health: () => ({
      ...queries.counts(),
      graded: worker.stats.applied,
      duplicates: worker.stats.duplicates,
      undelivered: Object.fromEntries(sinks.map((s) => [s.name, dispatcher.backlog(s.name)])),
      boardClients: sse.size,
    }),
  });
  const server: Server = createServer(handler);
  server.keepAliveTimeout = 65_000;
  const host = o.host ?? '127.0.0.1';
  try {
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(o.port ?? 8080, host, () => {
        server.off('error', rej);
        res();
      });
    });
  } catch (err) {
    sse.close();
    db.close();
    lock.release();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const url = `http://${shown}:${port}`;

  // Whatever was accepted or committed before a crash is graded and delivered now.
  worker.kick();
  dispatcher.kick();

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const closed = new Promise<void>((res) => server.close(() => res()));
      sse.close();
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), 5000);
      await closed;
      clearTimeout(force);
      await worker.stop();
      await dispatcher.stop();
      db.close();
      lock.release();
    })());

  return {
    url,
    boardUrl: `${url}/?key=${boardKey}`,
    port,
    dataDir,
    db,
    queue,
    worker,
    dispatcher,
    tokens,
    close,
  };
}

export const DEFAULT_DATA_DIR = '.crs';
export const demoDataDir = (base = DEFAULT_DATA_DIR) => join(base, 'demo');
