// The `crs` command line: one entry, one sub-command per job.
import { readFileSync, writeFileSync } from 'node:fs';
import { SCHEMES, resolveConfig, type GradingConfig, type Scheme } from '#domain/config.ts';
import { deviceMessageJsonSchema } from '#domain/contract.ts';
import { parseTimeWithOffset } from '#domain/typed-time.ts';
import { INTERFACE_FLAGS, inline, shown, parseFlags } from './flags.ts';
import { EXIT, replayCommand } from './replay.ts';
import type { Synthesize } from '#hosts/aws-emulator/template.ts';
import type { SiteZone } from '#app/interfaces/zone.ts';

const SCHEMA_PATH = new URL('../contract/device-message.v1.schema.json', import.meta.url);
const OPENAPI_PATH = new URL('../contract/openapi.v1.json', import.meta.url);

const USAGE = `usage:
  crs replay FILE [--scheme astct2019|lee2014] [--config FILE]   grade an NDJSON file ("-" for stdin)
      [--format json|hl7v2|fhir|mixed] [--hl7-zone ZONE]            ...or HL7 v2 (MLLP frames or blank-line blocks), FHIR R4, or both
      [--hl7-patient-authority AUTH]                              ...HL7 v2: the assigning authority (PID-3.4) of the patient ids
      [--fhir-patient-system URI]                                 ...FHIR: the identifier system of the patient ids
      [--fhir-drug-codes FILE]                                    ...FHIR: the site's drug codes (JSON)
      [--escalations [--until TIME]]                              ...and run pages, ladders, acks and silences in simulated time
  crs schema [--openapi] [--write]                              print the device message JSON Schema (or the HTTP API's
                                                                OpenAPI document); --write writes both to shared/contract/
  crs serve [--port N] [--data DIR] [--webhook URL] [--scheme S]    the pipeline on this machine, with the on-call board
  crs serve --backend aws [--endpoint URL] [--port N]              the deployed shape against moto, LocalStack or AWS
  crs start [--port N] [--seed N] [--speed X]                      serve plus the simulator demo (npm start)
  crs simulate [--url URL] [--seed N] [--speed X] [--courses LIST] play simulated patients to a running crs serve
  crs mllp-bridge --listen PORT --to URL --token-file F          HL7 v2 over MLLP to HTTPS, with a durable spool
  crs token issue --device ID --kind K [--expires WHEN] | rotate TOKEN_ID | scope TOKEN_ID ... | revoke TOKEN_ID | list
      [--data DIR | --backend aws]                                 device tokens, their expiry and rotation (crs token --help)
  crs audit export --patient P [--format ndjson|csv] [--data DIR]   one patient's audit trail (pages, acks, silences...)
  crs backup --to DIR [--data DIR]                                 a copy of crs serve's data directory, taken while it runs
  crs restore --backend aws --at TIME --from-state-table T ...     the stack's tables made those DynamoDB restored (crs restore --help)
  crs board-link [--data DIR]                                      the on-call board's link with its key (crs serve's)
  crs ack-key rotate [--drop-previous] | drop-previous
      [--data DIR | --backend aws]                                 a new acknowledge-link key (crs ack-key --help)
  crs silence create|end|list ... [--data DIR | --backend aws]      silences of a patient or a team (crs silence --help)
  crs doctor --backend aws [--outputs F] [--test-page TEAM]        whether pages reach people: subscriptions, alarms, last runs
  crs outbox list | retry (--all | ID...) [--data DIR | --backend aws]  records a lane parked: a receiver refused them (crs outbox --help)
  crs dead-letters list | redrive (--all | ID...) [--data DIR]     messages grading failed 3 times, graded again once fixed
  crs --version                                                    which release this is (its commit and that commit's date)
  (crs serve --help and crs simulate --help list every option)
`;

const REPLAY_USAGE = `  crs replay FILE [--scheme astct2019|lee2014] [--config FILE] [--escalations [--until TIME]]
  crs replay FILE --format json|hl7v2|fhir|mixed [--hl7-zone ZONE] [--hl7-patient-authority AUTH]
                  [--fhir-patient-system URI] [--fhir-drug-codes FILE] [--scheme S] [--config FILE]
      grade FILE ("-": standard input) through the pipeline's validation, state and grading, lines in file order;
      NDJSON on stdout, one event a line (assessment, notification, duplicate, rejected): docs/replay.md
      --format: JSON device messages (default), HL7 v2 (MLLP frames or blank-line blocks), FHIR R4, or both mixed;
      --hl7-zone: the zone (Europe/Paris, +01:00) of HL7 v2 times sent without an offset (hl7v2, mixed);
      --hl7-patient-authority: the assigning authority (PID-3.4) of the patient ids (hl7v2, mixed);
      --fhir-patient-system: the identifier system (a URI) of the patient ids (fhir, mixed);
      --fhir-drug-codes: a JSON file of the site's drug codes, [{ "system", "code", "drug" }] (fhir, mixed;
        docs/interfaces.md);
      --escalations: JSON only: also run pages, ladders, acks and silences in simulated time, up to --until TIME
        (RFC 3339 with its offset) after the last line
      Exit 0: every line accepted; 1: a line was rejected (the others still graded); 2: usage or I/O error.
`;

const SCHEMA_USAGE = `  crs schema [--openapi] [--write]
      print the device message JSON Schema (generated from the zod schema), or with --openapi the HTTP API's
      OpenAPI document; --write writes both to shared/contract/ (the document embeds the schema)
`;

class UsageError extends Error {}

/** A command's usage on stdout, for --help (exit 0). */
function help(usage: string): number {
  process.stdout.write(`usage:\n${usage}`);
  return EXIT.ok;
}

/** Loads the grading configuration: defaults, then a JSON file of overrides, then the command line's scheme. */
export function loadConfig(configFile: string | undefined, scheme: string | undefined): GradingConfig {
  let overrides: unknown = {};
  if (configFile) {
    try {
      overrides = JSON.parse(readFileSync(configFile, 'utf8'));
    } catch (err) {
      throw new UsageError(`cannot read config ${configFile}: ${(err as Error).message}`);
    }
  }
  return configOf(overrides, scheme);
}

/**
 * The grading configuration of overrides already read (a config file's JSON) and the command line's scheme: for a
 * command that also uses the overrides themselves (crs serve --backend aws hands them to the stack), read once.
 */
export function configOf(overrides: unknown, scheme: string | undefined): GradingConfig {
  if (scheme !== undefined && !(SCHEMES as readonly string[]).includes(scheme)) {
    throw new UsageError(`--scheme must be one of ${SCHEMES.join(', ')} (got ${shown(scheme)})`);
  }
  // Onto an object only: spread, a file of [] or null became {scheme} and was taken (refused without --scheme).
  const isObject = typeof overrides === 'object' && overrides !== null && !Array.isArray(overrides);
  if (scheme && isObject) overrides = { ...(overrides as object), scheme: scheme as Scheme };
  const r = resolveConfig(overrides);
  if (!r.ok) throw new UsageError(`invalid config: ${r.errors.join('; ')}`);
  return r.config;
}

/** The value of `--backend` (`--backend X` or `--backend=X`); embedded when absent. */
function backendOf(args: string[]): string {
  let backend = 'embedded';
  args.forEach((a, i) => {
    if (a === '--backend') backend = args[i + 1] ?? '';
    else if (a.startsWith('--backend=')) backend = a.slice('--backend='.length);
  });
  if (backend !== 'aws' && backend !== 'embedded')
    throw new UsageError(`--backend must be aws or embedded (got ${shown(backend)})`);
  return backend;
}

/** The arguments without `--backend embedded`, which the embedded server does not take. */
function withoutBackend(args: string[]): string[] {
  return args.filter((a, i) => a !== '--backend' && args[i - 1] !== '--backend' && !a.startsWith('--backend='));
}

/** @public For the entry point (bin/crs.js, through the bundle): the synthesis it hands in, kept between runs. */
export { cachedSynthesis } from '#hosts/aws-emulator/synthesis-cache.ts';

/** What the entry point (bin/crs.js) hands in: code outside shared/ that the CLI may not import itself. */
export interface EntryHooks {
  synthesize?: Synthesize;
}

/** The flags `crs replay` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
export const REPLAY_OPTIONS = {
  scheme: { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  escalations: { type: 'boolean' },
  until: { type: 'string' },
  format: { type: 'string' },
  ...INTERFACE_FLAGS,
} as const;

/** The flags `crs schema` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
export const SCHEMA_OPTIONS = {
  write: { type: 'boolean' },
  openapi: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function main(argv: string[], hooks: EntryHooks = {}): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'replay': {
        const { values, positionals } = parseFlags({
          args: rest,
          allowPositionals: true,
          options: REPLAY_OPTIONS,
        });
        if (values.help) return help(REPLAY_USAGE);
        if (positionals.length !== 1) throw new UsageError('replay takes exactly one FILE (or - for standard input)');
        // Checked whatever the format, then refused where it cannot apply: it was ignored with JSON (and FHIR),
        // garbage included, so a replay meant to read HL7 times in a zone read none and said nothing.
        const zoneText = values['hl7-zone'];
        let zone: SiteZone | undefined;
        if (zoneText !== undefined) {
          const { parseZone, zoneProblem } = await import('#app/interfaces/zone.ts');
          const badZone = zoneProblem(zoneText);
          if (badZone !== undefined) throw new UsageError(`--hl7-zone ${shown(zoneText)} ${badZone}`);
          zone = parseZone(zoneText);
        }
        const format = values.format ?? 'json';
        if (zoneText !== undefined && (format === 'json' || format === 'fhir'))
          throw new UsageError(
            `--hl7-zone is the zone of HL7 v2 times without an offset: it takes --format hl7v2 or mixed, not ${format}`,
          );
        const authorityText = values['hl7-patient-authority'];
        let patientAuthority: string | undefined;
        if (authorityText !== undefined) {
          const { PATIENT_AUTHORITY_RULE, parsePatientAuthority } = await import(
            '#app/interfaces/patient-authority.ts'
          );
          patientAuthority = parsePatientAuthority(authorityText);
          if (patientAuthority === undefined)
            throw new UsageError(
              `--hl7-patient-authority must be ${PATIENT_AUTHORITY_RULE} (got ${shown(authorityText)})`,
            );
          if (format === 'json' || format === 'fhir')
            throw new UsageError(
              `--hl7-patient-authority is the assigning authority of HL7 v2 patient ids: it takes --format hl7v2 or mixed, not ${format}`,
            );
        }
        const systemText = values['fhir-patient-system'];
        let patientSystem: string | undefined;
        if (systemText !== undefined) {
          const { PATIENT_SYSTEM_RULE, parsePatientSystem } = await import('#app/interfaces/patient-system.ts');
          patientSystem = parsePatientSystem(systemText);
          if (patientSystem === undefined)
            throw new UsageError(`--fhir-patient-system must be ${PATIENT_SYSTEM_RULE} (got ${shown(systemText)})`);
          if (format === 'json' || format === 'hl7v2')
            throw new UsageError(
              `--fhir-patient-system is the identifier system of FHIR patient ids: it takes --format fhir or mixed, not ${format}`,
            );
        }
        const drugCodesText = values['fhir-drug-codes'];
        if (drugCodesText !== undefined && (format === 'json' || format === 'hl7v2'))
          throw new UsageError(
            `--fhir-drug-codes is the site's FHIR drug codes: it takes --format fhir or mixed, not ${format}`,
          );
        const drugCodes =
          drugCodesText === undefined
            ? undefined
            : (await import('./drug-codes-file.ts')).drugCodesFile(drugCodesText, (t) => new UsageError(t));
        if (values.format !== undefined && values.format !== 'json') {
          const { REPLAY_FORMATS, replayInterfacesCommand } = await import('./replay-interfaces.ts');
          if (!(REPLAY_FORMATS as readonly string[]).includes(values.format))
            throw new UsageError(`--format must be one of ${REPLAY_FORMATS.join(', ')}`);
          if (values.escalations)
            throw new UsageError('--escalations takes JSON; translate first or replay without it');
          return await replayInterfacesCommand(
            positionals[0]!,
            values.format as 'hl7v2' | 'fhir' | 'mixed',
            loadConfig(values.config, values.scheme),
            { ...(zone ? { zone } : {}), ...(patientAuthority !== undefined ? { patientAuthority } : {}) },
            {
              ...(patientSystem !== undefined ? { patientSystem } : {}),
              ...(drugCodes !== undefined ? { drugCodes } : {}),
            },
          );
        }
        // As the control lines' times: with a zone offset, never the machine's local time (Date.parse alone would).
        const until = values.until === undefined ? undefined : parseTimeWithOffset(values.until);
        if (until !== undefined && (!values.escalations || Number.isNaN(until))) {
          throw new UsageError(
            '--until takes an RFC 3339 time with a zone offset (e.g. 2026-11-26T12:00:00Z), and only with --escalations',
          );
        }
        return await replayCommand(positionals[0]!, loadConfig(values.config, values.scheme), {
          escalations: values.escalations ?? false,
          ...(until === undefined ? {} : { until }),
        });
      }
      // Loaded on demand, so that replay does not pay for SQLite and the HTTP server. What these commands write (the
      // database, its WAL and SHM, keys, the spool, the security log) is patient data or a secret: owner-only.
      case 'serve':
        process.umask(0o077);
        // --backend aws: the deployed shape against an AWS endpoint (serve-aws.ts); otherwise the embedded backend.
        if (backendOf(rest) === 'aws')
          return await (await import('./serve-aws.ts')).serveAwsCommand(rest, configOf, hooks.synthesize);
        return await (await import('./serve.ts')).serveCommand(withoutBackend(rest), loadConfig);
      case 'start':
        process.umask(0o077);
        return await (await import('./serve.ts')).startCommand(rest, loadConfig);
      case 'simulate':
        return await (await import('./simulate.ts')).simulateCommand(rest);
      case 'mllp-bridge':
        process.umask(0o077);
        return await (await import('./mllp-bridge.ts')).mllpBridgeCommand(rest);
      case 'backup':
        process.umask(0o077);
        return (await import('./backup.ts')).backupCommand(rest);
      case 'restore':
        return await (await import('./restore.ts')).restoreCommand(rest);
      case 'board-link':
        return await (await import('./board-link.ts')).boardLinkCommand(rest);
      case 'ack-key':
        process.umask(0o077);
        return await (await import('./ack-key.ts')).ackKeyCommand(rest);
      case 'audit':
        return await (await import('./audit.ts')).auditCommand(rest);
      case 'silence':
        return await (await import('./silence.ts')).silenceCommand(rest, loadConfig);
      case 'outbox':
        return await (await import('./outbox.ts')).outboxCommand(rest, loadConfig);
      case 'dead-letters':
        return await (await import('./dead-letters.ts')).deadLettersCommand(rest);
      case 'token':
        process.umask(0o077);
        return await (await import('./tokens.ts')).tokenCommand(rest);
      case 'doctor':
        return await (await import('./doctor.ts')).doctorCommand(rest, loadConfig);
      case 'schema': {
        const { values } = parseFlags({
          args: rest,
          options: SCHEMA_OPTIONS,
        });
        if (values.help) return help(SCHEMA_USAGE);
        const schema = `${JSON.stringify(deviceMessageJsonSchema(), null, 2)}\n`;
        // Loaded on demand: the document's examples load the HL7 v2 and FHIR encoders.
        const openapi = async () => `${JSON.stringify((await import('#app/openapi.ts')).openApiDocument(), null, 2)}\n`;
        // Both at once: the document embeds the schema, so one written alone would leave the other stale.
        if (values.write) {
          writeFileSync(SCHEMA_PATH, schema);
          writeFileSync(OPENAPI_PATH, await openapi());
        } else process.stdout.write(values.openapi ? await openapi() : schema);
        return EXIT.ok;
      }
      case '--version':
        process.stdout.write(`crs ${(await import('#app/release.ts')).thisRelease()}\n`);
        return EXIT.ok;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? EXIT.usage : EXIT.ok;
      default:
        throw new UsageError(`unknown command ${shown(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      // replay and schema with their own usage, as every other command says its mistakes.
      const own = command === 'replay' ? REPLAY_USAGE : command === 'schema' ? SCHEMA_USAGE : undefined;
      process.stderr.write(
        own
          ? `crs ${command}: ${inline((err as Error).message)}\nusage:\n${own}`
          : `crs: ${inline((err as Error).message)}\n${USAGE}`,
      );
      return EXIT.usage;
    }
    throw err;
  }
}
