// `crs silence --backend embedded`: the silences of the `crs serve` running on a data directory, made through its
// own API (the board's), with the board key kept in that directory. The server does the work (pager, audit, a
// synchronous=FULL commit, the board's live update); this is a client of it.
import { resolve } from 'node:path';
import type { Silence } from '#domain/paging.ts';
import { isTimeZone } from '#domain/time.ts';
import { DEFAULT_DATA_DIR } from '#hosts/embedded/embedded.ts';
import { NotJson, serveClient } from './serve-client.ts';
import { SilenceUsageError, unknownPatient, type SilenceBackend, type UnreadableListed } from './silence.ts';

interface SilenceJson {
  silenceId: string;
  scope: Silence['scope'];
  from: string;
  until: string;
  createdBy: string;
  reason: string;
  endedAt?: string | null;
  endedBy?: string | null;
}

const fromJson = (s: SilenceJson): Silence => ({
  silenceId: s.silenceId,
  scope: s.scope,
  from: Date.parse(s.from),
  until: Date.parse(s.until),
  createdBy: s.createdBy,
  reason: s.reason,
  ...(s.endedAt ? { endedAt: Date.parse(s.endedAt), endedBy: s.endedBy ?? '' } : {}),
});

export async function embeddedSilences(data: string | undefined): Promise<SilenceBackend> {
  const dir = resolve(data ?? DEFAULT_DATA_DIR);
  const client = await serveClient(dir);
  if (!client)
    throw new SilenceUsageError(
      `no crs serve is running on ${dir} (silences are kept by the running server; give its --data DIR)`,
    );
  const call = async (method: string, path: string, body?: unknown) => {
    try {
      return await client.call(method, path, body);
    } catch (err) {
      if (err instanceof NotJson) throw err;
      throw new SilenceUsageError(`the crs serve of ${dir} does not answer at ${client.url} (is it running?)`);
    }
  };
  const refused = (r: { status: number; json: Record<string, unknown> }) =>
    new Error(
      `the server answered ${r.status}: ${(r.json.errors as string[] | undefined)?.join('; ') ?? String(r.json.error)}`,
    );
  // The server's zone, from its answers (a server before 2026-12-06 names none: its times are then written in UTC,
  // named so); read before anything is printed, each command asking once.
  let timeZone = 'UTC';
  const zoneOf = (json: Record<string, unknown>) => {
    if (typeof json.timeZone === 'string' && isTimeZone(json.timeZone)) timeZone = json.timeZone;
  };
  return {
    get timeZone() {
      return timeZone;
    },
    async create(s) {
      const scope = 'patientId' in s.scope ? { patientId: s.scope.patientId } : { team: s.scope.team };
      const r = await call('POST', '/api/silences', {
        ...scope,
        minutes: (s.until - s.from) / 60_000,
        reason: s.reason,
        by: s.createdBy,
      });
      if (r.status === 404) throw unknownPatient(s);
      if (r.status !== 201) throw refused(r);
      zoneOf(r.json);
      return fromJson(r.json.silence as SilenceJson);
    },
    async end(silenceId, by) {
      const r = await call('POST', `/api/silences/${encodeURIComponent(silenceId)}/end`, { by });
      if (r.status === 404) return undefined;
      if (r.status !== 200) throw refused(r);
      const changed = r.json.changed === true;
      if (r.json.unreadable) return { unreadable: r.json.unreadable as { silenceId: string; reason: string }, changed };
      return { silence: fromJson(r.json.silence as SilenceJson), changed };
    },
    async list(all) {
      if (all)
        throw new SilenceUsageError(
          '--all is for --backend aws; the embedded server lists the silences in force (ended ones are in the audit trail)',
        );
      const r = await call('GET', '/api/silences');
      if (r.status !== 200) throw refused(r);
      zoneOf(r.json);
      return {
        silences: (r.json.silences as SilenceJson[]).map(fromJson),
        // A server before 2026-12-05 names none.
        unreadable: (r.json.unreadable as UnreadableListed[] | undefined) ?? [],
      };
    },
    close: () => undefined,
  };
}
