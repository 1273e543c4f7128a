// `crs silence create|end|list`: time-bounded silences of a patient or a team (e.g. during transport), created and
// ended by a named user and audited by the pager. A silence holds pages below the unsilenceable grade (grade 4
// by default is never held) until it ends; the held pages are then sent if still open. Backends register here:
// `--backend aws` works on a deployment's tables (or a `crs serve --backend aws` run) with the operator's
// credentials; `--backend embedded` (the default) asks the `crs serve` running on --data DIR, through the same
// API as its board (POST /api/silences), so that its pager, board and audit trail see the silence at once.
import type { GradingConfig } from '#domain/config.ts';
import type { Silence } from '#domain/paging.ts';
import { setAsideText, type EndedSilence } from '#app/pager.ts';
import { formatSiteTime, iso } from '#domain/time.ts';
import { checkAckName } from '#app/ack.ts';
import { NO_SUCH_PATIENT, checkSilence, silenceIdError, startSilence } from '#app/silence.ts';
import { inline, isOneOf, shown, parseFlags } from './flags.ts';

// Each action with its flags, then where it runs: the flags were detailed only with --backend aws, the embedded
// server (the default) had one line.
export const SILENCE_USAGE = `  crs silence create (--patient P | --team T) --minutes N --by NAME --reason TEXT [--json] [WHERE]
      hold pages below grade 4 for P (or team T) for N minutes (1-1440); prints the silence id
  crs silence end SILENCE_ID --by NAME [--json] [WHERE]
      end it early: what it held is paged now, if still open
  crs silence list [--all] [--json] [WHERE]
      the silences in force (--all, AWS only: also those ended or over, kept 30 days; crs serve's are in its audit
      trail)
  WHERE: [--data DIR]
      the crs serve running on DIR (default .crs; the default backend), through its board's API: its pager, board
      and audit trail see the silence at once
    or --backend aws [--outputs FILE] [--config FILE]
      a deployment's tables (or a crs serve --backend aws run): the tables, topic, timers queue and link secret from
      --outputs FILE (the stack's outputs, or the file crs serve --backend aws --outputs FILE writes) or the CRS_*
      variables; --config: the deploy's grading configuration; AWS settings as for the AWS CLI
`;

export class SilenceUsageError extends Error {}
/** The backend refused what was asked (a patient it does not know): said as it is, exit status 1. */
export class SilenceRefused extends Error {}

/** A patient's silence refused by a backend that does not know the patient. */
export const unknownPatient = (s: Silence) =>
  new SilenceRefused(
    `${NO_SUCH_PATIENT} ${'patientId' in s.scope ? s.scope.patientId : ''}: nothing graded for it (is the id right?)`,
  );

/** The silences listed, and those whose stored item cannot be read, by id with why (never dropped silently). */
export interface SilenceList {
  silences: Silence[];
  unreadable: UnreadableListed[];
}

/** A silence whose item cannot be read, with its patient where the store keeps it apart from the item's JSON. */
export type UnreadableListed = { silenceId: string; reason: string; patientId?: string };

export interface SilenceBackend {
  /**
   * The site's zone (site.timeZone), in which the times people read are written, as on the board: the running
   * server's (its answers name it), or the deploy's --config.
   */
  readonly timeZone: string;
  create(s: Silence): Promise<Silence>;
  /**
   * changed: false when it had ended already (ended by someone, or its time ran out); one whose stored item cannot
   * be read is named with why instead of shown.
   */
  end(silenceId: string, by: string): Promise<EndedSilence | undefined>;
  list(all: boolean): Promise<SilenceList>;
  close(): void;
}

type Options = Record<string, string | boolean | undefined>;
type LoadConfig = (file: string | undefined, scheme: string | undefined) => GradingConfig;

/** Where each backend keeps its silences. */
export const SILENCE_BACKENDS: Record<string, (o: Options, config: GradingConfig) => Promise<SilenceBackend>> = {
  embedded: async (o) =>
    (await import('./silence-embedded.ts')).embeddedSilences(typeof o.data === 'string' ? o.data : undefined),
  aws: async (o, config) => {
    const { operatorPaging, operatorVariables, OperatorUsageError } = await import('./aws-operator.ts');
    try {
      const paging = await operatorPaging(
        operatorVariables(typeof o.outputs === 'string' ? o.outputs : undefined, process.env),
        config,
      );
      return {
        timeZone: config.site.timeZone,
        create: async (s) => {
          const r = await startSilence(
            s,
            async (patientId) => (await paging.states.load(patientId)) !== undefined,
            (x) => paging.pager.silence(x, Date.now()),
          );
          if (!r.ok) throw unknownPatient(s);
          return r.silence;
        },
        end: (id, by) => paging.pager.endSilence(id, by, Date.now()),
        list: async (all) => {
          const read = all ? await paging.pages.allSilences() : await paging.pages.silences(Date.now());
          return {
            silences: read.silences,
            unreadable: read.unreadable.map(({ unreadable: _, ...listed }) => listed),
          };
        },
        close: paging.close,
      };
    } catch (err) {
      throw err instanceof OperatorUsageError ? new SilenceUsageError(err.message) : err;
    }
  },
};

function usage(message: string): number {
  process.stderr.write(`crs silence: ${message}\nusage:\n${SILENCE_USAGE}`);
  return 2;
}

const scopeText = (s: Silence) => ('patientId' in s.scope ? `patient ${s.scope.patientId}` : `team ${s.scope.team}`);

/**
 * `crs silence list` for people: one silence a line, each column wide enough for its longest value, so that no two
 * columns run together. Its times are the board's, in the site's zone (`2026-12-02 10:31 CET`, at most 25
 * characters with an offset for a zone: `GMT+5:30`); until 2026-12-06 they were RFC 3339 UTC, an hour off for CET.
 */
export function silenceTable(
  list: readonly Silence[],
  timeZone: string,
  unreadable: readonly UnreadableListed[] = [],
): string {
  const time = (ms: number) => formatSiteTime(ms, timeZone);
  const head = `${'SILENCE ID'.padEnd(26)}${'SCOPE'.padEnd(30)}${'FROM'.padEnd(26)}${'UNTIL'.padEnd(26)}BY / REASON\n`;
  return (
    head +
    list
      .map((s) => {
        const ended = s.endedAt !== undefined ? ` (ended ${time(s.endedAt)} by ${s.endedBy ?? '?'})` : '';
        return `${`${s.silenceId} `.padEnd(26)}${`${scopeText(s)} `.padEnd(30)}${`${time(s.from)} `.padEnd(26)}${`${time(s.until)} `.padEnd(26)}${s.createdBy}: ${s.reason}${ended}\n`;
      })
      .join('') +
    unreadable
      .map((u) => {
        const scope = u.patientId === undefined ? '?' : `patient ${u.patientId}`;
        return `${`${u.silenceId} `.padEnd(26)}${`${scope} `.padEnd(30)}(its stored item cannot be read: ${u.reason})\n`;
      })
      .join('')
  );
}

function view(s: Silence) {
  return {
    silenceId: s.silenceId,
    ...s.scope,
    from: iso(s.from),
    until: iso(s.until),
    createdBy: s.createdBy,
    reason: s.reason,
    ...(s.endedAt !== undefined ? { endedAt: iso(s.endedAt), endedBy: s.endedBy ?? null } : {}),
  };
}

/** The flags `crs silence` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
/** What `crs silence` does. */
export const SILENCE_ACTIONS = ['create', 'end', 'list'] as const;

export const SILENCE_OPTIONS = {
  patient: { type: 'string' },
  team: { type: 'string' },
  minutes: { type: 'string' },
  by: { type: 'string' },
  reason: { type: 'string' },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
  backend: { type: 'string', default: 'embedded' },
  outputs: { type: 'string' },
  config: { type: 'string' },
  scheme: { type: 'string' },
  data: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function silenceCommand(args: string[], loadConfig: LoadConfig): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`usage:\n${SILENCE_USAGE}`);
    return 0;
  }
  if (!isOneOf(SILENCE_ACTIONS, sub))
    return usage(sub === undefined ? 'say what to do: create, end or list' : `unknown sub-command ${shown(sub)}`);
  let values: Options;
  let positionals: string[];
  try {
    ({ values, positionals } = parseFlags({
      args: rest,
      allowPositionals: true,
      options: SILENCE_OPTIONS,
    }));
  } catch (err) {
    return usage(inline((err as Error).message)); // Node quotes an unknown option raw
  }
  if (values.help) {
    process.stdout.write(`usage:\n${SILENCE_USAGE}`);
    return 0;
  }
  const open = SILENCE_BACKENDS[String(values.backend)];
  if (!open)
    return usage(
      `--backend must be one of ${Object.keys(SILENCE_BACKENDS).join(', ')} (got ${shown(String(values.backend))})`,
    );

  // Checked before anything is opened: a typo costs no AWS call.
  let created: Silence | undefined;
  let ending: { id: string; by: string } | undefined;
  if (sub === 'create') {
    if (positionals.length > 0) return usage('create takes no positional arguments');
    // Decimal digits only: Number() would read 0x10 as 16 and 1e3 as 1000; anything else goes to checkSilence as
    // given, which refuses it as the board's API does (one message for both).
    const minutes =
      typeof values.minutes === 'string' && /^\d+$/.test(values.minutes) ? Number(values.minutes) : values.minutes;
    const body = { patientId: values.patient, team: values.team, minutes, reason: values.reason, by: values.by };
    const c = checkSilence(body, Date.now());
    if (!c.ok)
      return usage(
        c.errors
          .map((e) =>
            e.replace(
              /^(\w+):/,
              (_, k: string) =>
                `--${{ patientId: 'patient', by: 'by', minutes: 'minutes', reason: 'reason', team: 'team', scope: 'patient or --team' }[k] ?? k}:`,
            ),
          )
          .join('; '),
      );
    created = c.silence;
  } else if (sub === 'end') {
    if (positionals.length !== 1) return usage('end takes exactly one SILENCE_ID');
    // Refused before any backend is asked, named escaped (its raw characters were echoed to the terminal).
    if (silenceIdError(positionals[0]!))
      return usage(
        `SILENCE_ID must be a silence id, sil_ and 12 of A-Z a-z 0-9 _ - as create and list print it (got ${shown(positionals[0]!)})`,
      );
    const name = checkAckName(values.by);
    if (!name.ok) return usage(name.error.replace(/^by:/, '--by:'));
    ending = { id: positionals[0]!, by: name.name };
  } else if (positionals.length > 0) return usage('list takes no positional arguments');

  let backend: SilenceBackend;
  try {
    backend = await open(
      values,
      loadConfig(
        typeof values.config === 'string' ? values.config : undefined,
        typeof values.scheme === 'string' ? values.scheme : undefined,
      ),
    );
  } catch (err) {
    if (err instanceof SilenceUsageError) return usage(err.message);
    process.stderr.write(`crs silence: ${(err as Error).name}: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    if (created) {
      const s = await backend.create(created);
      process.stdout.write(values.json ? `${JSON.stringify(view(s))}\n` : `${s.silenceId}\n`);
      process.stderr.write(
        `crs silence: ${scopeText(s)} silenced until ${formatSiteTime(s.until, backend.timeZone)} by ${s.createdBy} (pages of grade 4 and above are never held)\n`,
      );
      return 0;
    }
    if (ending) {
      const r = await backend.end(ending.id, ending.by);
      if (!r) {
        process.stderr.write(`crs silence: no silence ${ending.id}\n`);
        return 1;
      }
      if ('unreadable' in r) {
        // It held nothing: ended, it is no longer read as in force (until 2026-12-05 this exited 1, and only an edit
        // of the database by hand got rid of it).
        const why = r.unreadable.reason;
        process.stderr.write(
          r.changed
            ? `crs silence: ${ending.id} (its stored item cannot be read: ${why}) ended by ${ending.by}; it held nothing\n`
            : `crs silence: ${ending.id} had already ended\n`,
        );
        process.stdout.write(
          values.json ? `${JSON.stringify({ silenceId: ending.id, unreadable: why })}\n` : `${ending.id}\n`,
        );
        return 0;
      }
      const s = r.silence;
      // What the release could not send is said as such (a team with no endpoint now: nobody would receive it), not
      // as paged (2026-12-07).
      const released =
        r.setAside !== undefined && r.setAside.length > 0
          ? `not paged, set aside (the escalate log names it at each tick): ${setAsideText(r.setAside)}`
          : 'what it held is paged now if still open';
      if (!r.changed) process.stderr.write(`crs silence: ${ending.id} had already ended\n`);
      else process.stderr.write(`crs silence: ${ending.id} (${scopeText(s)}) ended by ${ending.by}; ${released}\n`);
      process.stdout.write(values.json ? `${JSON.stringify(view(s))}\n` : `${s.silenceId}\n`);
      return 0;
    }
    const { silences, unreadable } = await backend.list(values.all === true);
    if (values.json)
      process.stdout.write(
        `${JSON.stringify([...silences.map(view), ...unreadable.map((u) => ({ silenceId: u.silenceId, patientId: u.patientId, unreadable: u.reason }))])}\n`,
      );
    else process.stdout.write(silenceTable(silences, backend.timeZone, unreadable));
    // Listed where the others are, and said: it holds nothing until it is mended or deleted.
    if (unreadable.length > 0) {
      process.stderr.write(
        `crs silence: ${unreadable.length} silence(s) cannot be read (${unreadable.map((u) => u.silenceId).join(', ')}): each holds nothing; end it (crs silence end SILENCE_ID --by NAME), or mend it\n`,
      );
      return 1;
    }
    return 0;
  } catch (err) {
    // The same usage error as when the backend is opened (--all on crs serve, a server that stopped answering).
    if (err instanceof SilenceUsageError) return usage(err.message);
    if (err instanceof SilenceRefused) process.stderr.write(`crs silence: ${err.message}\n`);
    else process.stderr.write(`crs silence: ${(err as Error).name}: ${(err as Error).message}\n`);
    return 1;
  } finally {
    backend.close();
  }
}
