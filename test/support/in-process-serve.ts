// `crs serve` in the test's own process, as the paging tests drive it: the server's clock is the test's (so that
// 5- and 15-minute ladders take no time), its pages go as JSON lines into an array, and it logs nothing unless
// told where. With the
// board API (the board key) and the device API (the local token) as a test calls them.
import { expect } from 'vitest';
import { resolveConfig } from '#domain/config.ts';
import type { DeviceMessage } from '#domain/contract.ts';
import { startEmbeddedServer, type EmbeddedServer } from '#hosts/embedded/embedded.ts';
import { iso } from '#domain/time.ts';
import type { PageEvent } from '#domain/page-event.ts';
import { lineStream } from './lines.ts';
import { until } from './until.ts';

export function startPagingServer(o: {
  dataDir: string;
  /** The paging settings (crs-config `paging`) over the defaults. */
  paging: Record<string, unknown>;
  /** Where the page lines go. */
  lines: string[];
  now: () => number;
  localToken: string;
  maxPatients?: number;
  /** crs serve --board-ended-hours. */
  boardEndedHours?: number;
  /** The site settings (crs-config `site`: its time zone). */
  site?: Record<string, unknown>;
  /** crs serve --max-observation-age-days, as ms (a history seeded through the ingest is up to a year old). */
  maxObservationAgeMs?: number;
  /** Where the server's log lines go (none by default). */
  log?: (line: string) => void;
  /** crs serve --heartbeat-url, with its interval. */
  heartbeat?: { url: string; everyMs: number };
  /** crs serve --alert-webhook. */
  alertWebhook?: { url: string; secret?: string; server?: string };
  /** CRS_TEST_CLOCK=1: POST /local/clock steps `now`, and the server watches its clock against the monotonic one. */
  testClock?: boolean;
}): Promise<EmbeddedServer> {
  const r = resolveConfig({ paging: o.paging, ...(o.site ? { site: o.site } : {}) });
  if (!r.ok) throw new Error(r.errors.join('; '));
  return startEmbeddedServer({
    dataDir: o.dataDir,
    config: r.config,
    port: 0,
    localToken: o.localToken,
    pageStream: lineStream(o.lines),
    pageLines: true,
    now: o.now,
    log: o.log ?? (() => undefined),
    ...(o.maxPatients !== undefined ? { maxPatients: o.maxPatients } : {}),
    ...(o.boardEndedHours !== undefined ? { boardEndedHours: o.boardEndedHours } : {}),
    ...(o.maxObservationAgeMs !== undefined ? { maxObservationAgeMs: o.maxObservationAgeMs } : {}),
    ...(o.heartbeat ? { heartbeat: o.heartbeat } : {}),
    ...(o.alertWebhook ? { alertWebhook: o.alertWebhook } : {}),
    ...(o.testClock ? { testClock: true } : {}),
  });
}

/** A request to the server's board API, with the board key. */
export const boardApi =
  (server: Pick<EmbeddedServer, 'url' | 'boardUrl'>) =>
  (path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${server.url}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${new URL(server.boardUrl).searchParams.get('key')!}`,
        ...(init.headers ?? {}),
      },
    });

/** Posts each message to the device API with `token`, one request each, and expects each accepted. */
export async function postMessages(
  server: Pick<EmbeddedServer, 'url'>,
  token: string,
  messages: DeviceMessage[],
): Promise<void> {
  for (const m of messages) {
    const res = await fetch(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(m),
    });
    expect(res.status).toBe(202);
  }
}

/** Lets the ladders step and the stale-feed watch sweep at the server's clock, as its timer loop would. */
export async function stepPaging(server: Pick<EmbeddedServer, 'paging' | 'dispatcher'>): Promise<void> {
  await server.paging.tick();
  await server.paging.sweep();
  await until(() => server.dispatcher.backlog('stdout') === 0 || undefined, 'the stream to catch up');
}

/** An ADT event of the EHR as an integration engine posts it: PV1-3 `ward^^bed`; sent at `sentAt`, EVN-6 `at`. */
export const adtEvent = (o: {
  id: string;
  event: string;
  patientId: string;
  ward: string;
  bed: string;
  sentAt: number;
  at: number;
}) =>
  [
    `MSH|^~\\&|EPIC|HOSP|CRS|HOSP|${hl7Time(o.sentAt)}||ADT^${o.event}^ADT_A01|${o.id}|P|2.6`,
    `EVN|${o.event}|||||${hl7Time(o.at)}`,
    `PID|||${o.patientId}^^^HOSP^MR`,
    `PV1||I|${o.ward}^^${o.bed}`,
  ].join('\r');
const hl7Time = (ms: number) => `${iso(ms).replace(/\D/g, '').slice(0, 14)}+0000`;

/** The page events among the JSON lines a server printed (`pageLines`). */
export const pageEvents = (lines: readonly string[]): PageEvent[] =>
  lines
    .map((l) => JSON.parse(l) as PageEvent | { type: 'notification' })
    .filter((e): e is PageEvent => e.type === 'page');
