// `crs serve --backend aws`: the deployed shape (HTTP API -> ingest -> SQS FIFO -> grade -> DynamoDB + stream ->
// notify (the pager) -> SNS -> team queues; escalation timers and the schedule -> escalate; acknowledge links ->
// ack) against an AWS-compatible endpoint: moto, LocalStack, or AWS itself. Standard output carries only the pages
// (NDJSON: every page a team receives, and each grade change as `crs replay` prints it); the handlers' logs and
// everything else go to standard error.
import { readFileSync, writeFileSync } from 'node:fs';
import { localTokenHostProblem, localTokenProblem, plainHttpWarning, testClockHostProblem } from '#app/auth.ts';
import type { GradingConfig } from '#domain/config.ts';
import { PREFIX_PATTERN } from '#hosts/aws-emulator/run-prefix.ts';
import { stackOf, type SynthOptions, type Synthesize } from '#hosts/aws-emulator/template.ts';
import { PATIENT_AUTHORITY_RULE, parsePatientAuthority } from '#app/interfaces/patient-authority.ts';
import { PATIENT_SYSTEM_RULE, parsePatientSystem } from '#app/interfaces/patient-system.ts';
import { zoneProblem } from '#app/interfaces/zone.ts';
import { MAX_OBSERVATION_AGE_RULE, maxObservationAgeMs } from '#domain/device-clock.ts';
import { checkedDrugCodesFile } from './drug-codes-file.ts';
import { INTERFACE_FLAGS, numberFlag, shown, parseFlags } from './flags.ts';

export const SERVE_AWS_USAGE = `  crs serve --backend aws [--endpoint URL] [--port N] [--host H] [--prefix NAME] [--region R]
                          [--scheme S] [--config FILE] [--paging FILE] [--visibility-timeout SECONDS]
                          [--schedule-interval SECONDS] [--outputs FILE] [--page-lines]
                          [--hl7-zone ZONE] [--hl7-patient-authority AUTH] [--fhir-patient-system URI]
                          [--fhir-drug-codes FILE] [--max-observation-age-days D] [--ingest-token-any-host]
      provision the stack's queues, tables, stream, topic, secret and one queue per team on the endpoint (default
      $AWS_ENDPOINT_URL, else AWS itself) under NAME (default crs-local), run the real Lambda handlers against
      them, and print each grade change the team queues receive on stdout, once, as crs replay prints it
      (NDJSON); --page-lines: also every page each team receives ({"type":"page",...}: role, level, acknowledge
      link). CRS_INGEST_TOKEN is accepted as a device token, on a loopback --host only unless
      --ingest-token-any-host (as crs serve's). --visibility-timeout shortens the queue's retry delay (the stack's is 90 s);
      --schedule-interval how often the escalate function's schedule fires (the stack's is 60 s); --outputs
      writes the run's names as the stack's outputs file, for crs silence, crs audit export, crs outbox, crs token
      and crs doctor --outputs FILE;
      --hl7-zone, --hl7-patient-authority, --fhir-patient-system, --fhir-drug-codes, --max-observation-age-days: as
      crs serve's (the stack's -c hl7Zone, -c hl7PatientAuthority, -c fhirPatientSystem, -c fhirDrugCodes,
      -c maxObservationAgeDays).
  crs serve --backend aws --teardown [--endpoint URL] [--prefix NAME] [--region R]
      delete the resources of the run NAME
`;

/** The grading configuration of a config file's overrides (undefined: none) and --scheme (main.ts's configOf). */
type ConfigOf = (overrides: unknown, scheme: string | undefined) => GradingConfig;

class UsageError extends Error {}

const log = (line: string) => process.stderr.write(`${line}\n`);

const intOption = (name: string, text: string | undefined, min: number, max: number): number | undefined =>
  numberFlag(name, text, { min, max }, undefined, (error) => new UsageError(error));

function readJson(what: string, file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
}

/** The flags `crs serve --backend aws` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
export const SERVE_AWS_OPTIONS = {
  backend: { type: 'string' },
  endpoint: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  prefix: { type: 'string' },
  region: { type: 'string' },
  scheme: { type: 'string' },
  config: { type: 'string' },
  paging: { type: 'string' },
  'visibility-timeout': { type: 'string' },
  'schedule-interval': { type: 'string' },
  outputs: { type: 'string' },
  'page-lines': { type: 'boolean' },
  ...INTERFACE_FLAGS,
  'max-observation-age-days': { type: 'string' },
  'ingest-token-any-host': { type: 'boolean' },
  teardown: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const parseServeAws = (args: string[]) => parseFlags({ args, options: SERVE_AWS_OPTIONS });

type Values = ReturnType<typeof parseServeAws>['values'];

/** The --config file's overrides (undefined: none given); an unreadable file is a UsageError. */
const fileOverrides = (values: Values): unknown =>
  values.config === undefined ? undefined : readJson('config', values.config);

/** The --fhir-drug-codes file's map as read and checked (undefined: none given); a bad one is a UsageError. */
const fileDrugCodes = (values: Values): unknown[] | undefined =>
  values['fhir-drug-codes'] === undefined
    ? undefined
    : checkedDrugCodesFile(values['fhir-drug-codes'], (text) => new UsageError(text)).json;

/**
 * What the host synthesizes the stack from, as the arguments give it, with the --config file's overrides and the
 * --fhir-drug-codes file's map as read once (the grading configuration checked and logged is theirs too, the map
 * checked is the one shipped); an unreadable paging file is a UsageError.
 */
function stackOptions(values: Values, fromFile: unknown, drugCodes: unknown[] | undefined): SynthOptions {
  // The grading overrides go to the stack (as -c gradingConfig), which hands them to the grade function.
  let overrides = fromFile as Record<string, unknown> | undefined;
  if (values.scheme !== undefined) overrides = { ...overrides, scheme: values.scheme };
  return {
    ...(values.paging !== undefined ? { paging: readJson('paging config', values.paging) } : {}),
    ...(overrides ? { gradingOverrides: overrides } : {}),
    ...(values['hl7-zone'] !== undefined ? { hl7Zone: values['hl7-zone'] } : {}),
    ...(values['hl7-patient-authority'] !== undefined ? { hl7PatientAuthority: values['hl7-patient-authority'] } : {}),
    ...(values['fhir-patient-system'] !== undefined ? { fhirPatientSystem: values['fhir-patient-system'] } : {}),
    ...(drugCodes !== undefined ? { fhirDrugCodes: drugCodes } : {}),
    ...(values['max-observation-age-days'] !== undefined
      ? { maxObservationAgeDays: Number(values['max-observation-age-days']) }
      : {}),
  };
}

/**
 * The stack `crs serve --backend aws ARGS` synthesizes: the tests synthesize it ahead in their own process, where the
 * CDK is loaded once, into the cache the host then reads (shared/hosts/aws-emulator/synthesis-cache.ts).
 */
export const stackOfServeArgs = (args: string[]) => {
  const { values } = parseServeAws(args);
  return stackOf(stackOptions(values, fileOverrides(values), fileDrugCodes(values)));
};

/** The stack's synthesis comes from the entry point (bin/crs.js): the CLI itself never imports infra/. */
function needSynth(synthesize: Synthesize | undefined): Synthesize {
  if (!synthesize) throw new UsageError('crs serve --backend aws needs the stack: run it through bin/crs.js (npx crs)');
  return synthesize;
}

export async function serveAwsCommand(
  args: string[],
  configOf: ConfigOf,
  synthesize: Synthesize | undefined,
): Promise<number> {
  let values;
  let drugCodes: unknown[] | undefined;
  try {
    ({ values } = parseServeAws(args));
    if (values.help) {
      process.stdout.write(`usage:\n${SERVE_AWS_USAGE}`);
      return 0;
    }
    if (values.endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(values.endpoint))
      throw new UsageError(`--endpoint must be an http(s) URL (got ${shown(values.endpoint)})`);
    if (values.prefix !== undefined && !PREFIX_PATTERN.test(values.prefix))
      throw new UsageError('--prefix is 1-40 characters of A-Z a-z 0-9 _ -');
    const zone = values['hl7-zone'];
    const badZone = zone === undefined ? undefined : zoneProblem(zone);
    if (zone !== undefined && badZone !== undefined) throw new UsageError(`--hl7-zone ${shown(zone)} ${badZone}`);
    const authority = values['hl7-patient-authority'];
    if (authority !== undefined && parsePatientAuthority(authority) === undefined)
      throw new UsageError(`--hl7-patient-authority must be ${PATIENT_AUTHORITY_RULE} (got ${shown(authority)})`);
    const system = values['fhir-patient-system'];
    if (system !== undefined && parsePatientSystem(system) === undefined)
      throw new UsageError(`--fhir-patient-system must be ${PATIENT_SYSTEM_RULE} (got ${shown(system)})`);
    const age = values['max-observation-age-days'];
    if (age !== undefined && maxObservationAgeMs(age) === undefined)
      throw new UsageError(`--max-observation-age-days must be ${MAX_OBSERVATION_AGE_RULE} (got ${shown(age)})`);
    drugCodes = fileDrugCodes(values);
  } catch (err) {
    return usage(err);
  }
  const endpoint = values.endpoint ?? (process.env.AWS_ENDPOINT_URL || undefined);
  const region = values.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const prefix = values.prefix ?? 'crs-local';
  // The region on an emulator too: a run made with --region is found (and torn down) only in that region.
  const where = endpoint ? `endpoint ${endpoint} (region ${region})` : `AWS itself (region ${region})`;

  try {
    if (values.teardown) {
      const { teardownAwsHost } = await import('#hosts/aws-emulator/host.ts');
      const p = await teardownAwsHost({
        synthesize: needSynth(synthesize),
        endpoint,
        region,
        prefix,
        ...(values.paging !== undefined ? { paging: readJson('paging config', values.paging) } : {}),
      });
      if (!p) {
        log(
          `crs serve: nothing of run ${prefix} on ${where}: no queue or table named ${prefix}-...; nothing deleted (was the run made with another --prefix or --region?)`,
        );
        return 1;
      }
      log(
        `crs serve: deleted run ${prefix} on ${where}: ${p.queues.length + p.teamQueues.length} queues, ${p.tables.length} tables, ${p.topics.length} topics, ${p.secrets.length} secret, ${p.alarms.length} alarms`,
      );
      return 0;
    }
    // Read once: the configuration checked here and the stack's overrides cannot be two versions of the file.
    const fromFile = fileOverrides(values);
    const config = configOf(fromFile ?? {}, values.scheme);
    const stack = stackOptions(values, fromFile, drugCodes);
    const port = intOption('port', values.port, 0, 65535) ?? 8080;
    const visibility = intOption('visibility-timeout', values['visibility-timeout'], 0, 43_200);
    const scheduleSeconds = intOption('schedule-interval', values['schedule-interval'], 1, 86_400);
    const localToken = process.env.CRS_INGEST_TOKEN || undefined;
    const listenHost = values.host ?? '127.0.0.1';
    const tokenProblem =
      localToken === undefined
        ? undefined
        : (localTokenProblem(localToken) ??
          localTokenHostProblem(listenHost, values['ingest-token-any-host'] === true));
    if (tokenProblem) throw new UsageError(tokenProblem);
    const testClock = process.env.CRS_TEST_CLOCK === '1';
    const clockProblem = testClock ? testClockHostProblem(listenHost) : undefined;
    if (clockProblem) throw new UsageError(clockProblem);
    // This host stands in for API Gateway, which only serves HTTPS: it has no TLS of its own (said before the long
    // synthesis, so that it is read).
    const plain = plainHttpWarning(
      listenHost,
      {},
      {
        carried: 'device tokens and patient data',
        remedy:
          'this host is for tests (API Gateway serves the deployed stack over HTTPS): keep it on loopback or behind a TLS reverse proxy',
      },
    );
    if (plain) log(`crs serve: warning: ${plain}`);
    // Loaded once every option is checked: a usage error answers without loading the host and the AWS SDK.
    const { startAwsHost } = await import('#hosts/aws-emulator/host.ts');

    // Standard output is the page stream: the handlers' logs and metrics (written to stdout in Lambda) go to stderr.
    const writePage = process.stdout.write.bind(process.stdout);
    process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
    log(`crs serve: aws backend on ${where}; synthesizing the stack and provisioning run ${prefix}...`);
    const host = await startAwsHost({
      synthesize: needSynth(synthesize),
      endpoint,
      region,
      prefix,
      port,
      host: listenHost,
      ...stack,
      ...(visibility !== undefined ? { visibilityTimeoutSeconds: visibility } : {}),
      ...(scheduleSeconds !== undefined ? { scheduleSeconds } : {}),
      pageLines: values['page-lines'] ?? false,
      ...(localToken ? { localToken } : {}),
      crashBeforePublish: process.env.CRS_TEST_CRASH_BEFORE_PUBLISH === '1',
      testClock,
      ...(process.env.CRS_TEST_FAIL_NOTIFY_PATIENT
        ? { failNotifyPatient: process.env.CRS_TEST_FAIL_NOTIFY_PATIENT }
        : {}),
      ...(process.env.CRS_TEST_NOTIFY_AFTER ? { notifyAfter: process.env.CRS_TEST_NOTIFY_AFTER } : {}),
      out: (line) => void writePage(`${line}\n`),
      log,
    });
    // Listening for the signals before the lines scripts wait for (a SIGTERM as soon as they are out killed it): its
    // resources and its outputs file's too (until later on 2026-12-06), not only where it listens.
    const signalled = new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    const p = host.provisioned;
    log(
      `crs serve: resources ${JSON.stringify({
        prefix,
        queue: p.gradeSource.queue.url,
        queues: Object.fromEntries(p.queues.map((q) => [q.logicalId, q.url])),
        tables: Object.fromEntries(p.tables.map((t) => [t.logicalId, t.name])),
        topic: p.functions.notify.environment.CRS_PAGES_TOPIC_ARN,
        secret: p.functions.ack.environment.CRS_ACK_SECRET_ARN,
        ackBaseUrl: p.functions.ack.environment.CRS_ACK_BASE_URL,
        teamQueues: Object.fromEntries(p.teamQueues.map((t) => [t.team, t.queue.url])),
      })}`,
    );
    if (values.outputs !== undefined) {
      const { OUTPUTS, OPERATOR_ENV } = await import('./aws-operator.ts');
      const vars = Object.assign({}, ...Object.values(p.functions).map((f) => f.environment)) as Record<string, string>;
      const { localFunctionName } = await import('#hosts/aws-emulator/provision.ts');
      Object.assign(vars, {
        [OPERATOR_ENV.ingestFunction]: localFunctionName(prefix, 'ingest'),
        [OPERATOR_ENV.gradeFunction]: localFunctionName(prefix, 'grade'),
        [OPERATOR_ENV.escalateFunction]: localFunctionName(prefix, 'escalate'),
        ...(p.alarmTopicArn ? { [OPERATOR_ENV.alarmTopicArn]: p.alarmTopicArn } : {}),
        ...(p.undeliveredPagesArn ? { [OPERATOR_ENV.undeliveredPagesArn]: p.undeliveredPagesArn } : {}),
        ...(p.undeliveredAlarmsArn ? { [OPERATOR_ENV.undeliveredAlarmsArn]: p.undeliveredAlarmsArn } : {}),
        ...(p.notifySource.onFailure ? { [OPERATOR_ENV.notifyFailuresQueue]: p.notifySource.onFailure.url } : {}),
      });
      const { ROUTES } = await import('#app/ingest.ts');
      const { gradingSettingsId } = await import('#domain/settings-id.ts');
      const outputs = {
        ...Object.fromEntries(
          Object.entries(OUTPUTS).flatMap(([output, variable]) => (vars[variable] ? [[output, vars[variable]]] : [])),
        ),
        // The outputs no crs command reads but the docs' steps cite (2026-12-07; left out until then): the ingest
        // URLs are the local HTTP front's, as the stack's are its API's; the queues' as the stack names them.
        IngestUrl: `${host.url}${ROUTES.single}`,
        IngestBatchUrl: `${host.url}${ROUTES.batch}`,
        // The id of the grading settings the run grades under, as the stack's output gives it (2026-12-07; left out
        // until then): the runbook has the operator compare it with the audit trail's after a configuration change.
        GradingSettings: gradingSettingsId(config),
        ...(p.messagesDlqArn ? { MessagesDlqArn: p.messagesDlqArn } : {}),
        ...(p.undeliveredAlarmsQueueUrl ? { UndeliveredAlarmsQueueUrl: p.undeliveredAlarmsQueueUrl } : {}),
      };
      writeFileSync(values.outputs, `${JSON.stringify({ [`${prefix}`]: outputs }, null, 2)}\n`);
      log(
        `crs serve: the run's names are in ${values.outputs} (for crs silence, crs audit export, crs outbox, crs token and crs doctor --outputs ${values.outputs})`,
      );
    }
    log(
      `crs serve: scheme ${config.scheme}; teams subscribed: ${p.teamQueues.map((t) => t.team).join(', ') || 'none'}`,
    );
    log(`crs serve: listening on ${host.url} (routes ${p.routes.join(', ')}; status at GET ${host.url}/local/health)`);
    log(
      `crs serve: devices POST ${host.url}/v1/messages with "Authorization: Bearer <token>" ` +
        (localToken
          ? '(CRS_INGEST_TOKEN or a device token)'
          : // The command as a shell runs it from anywhere: the table, the emulator's endpoint, the region and the
            // dummy credentials (when this run set them: none were given) are this run's. It said --device ID without
            // the --kind issue requires, and no endpoint: refused, or the token issued into AWS itself; until
            // 2026-12-06 no credentials, so that a machine without any refused it.
            `(a device token: CRS_TOKENS_TABLE=${p.functions.ingest.environment.CRS_TOKENS_TABLE}${endpoint ? ` AWS_ENDPOINT_URL=${endpoint}` : ''} AWS_REGION=${region}${Object.entries(
              host.dummyCredentials,
            )
              .map(([k, v]) => ` ${k}=${v}`)
              .join('')} crs token issue --backend aws --device DEVICE_ID --kind KIND; or set CRS_INGEST_TOKEN)`),
    );
    log(
      `crs serve: acknowledge links open ${host.url}/ack/<token> (GET shows, POST acknowledges); apps POST ${host.url}/v1/acks {"token","by"}`,
    );
    log(
      `crs serve: grade changes go to standard output as NDJSON, once each, as the team queues receive them${values['page-lines'] ? ', and every page each team receives' : ''}`,
    );

    const signal = await signalled;
    log(`crs serve: ${signal}: finishing the work in flight and stopping`);
    await host.close();
    const pages = host.pages();
    // Grade changes and pages apart: it said "N pages printed" of the grade changes (2026-12-06).
    log(
      `crs serve: stopped; ${pages.printed} grade changes printed, ${pages.pages} pages received; deliveries per team ${JSON.stringify(pages.deliveries)}`,
    );
    return 0;
  } catch (err) {
    if (err instanceof UsageError || /^(--scheme|cannot read config|invalid config)/.test((err as Error).message))
      return usage(err);
    log(`crs serve: ${(err as Error).message}`);
    if ((err as { code?: string }).code === 'EADDRINUSE')
      log('crs serve: the port is in use; choose another with --port N (0 for any free port)');
    if (/ECONNREFUSED|ENOTFOUND|connect/i.test(String((err as Error).message)) && endpoint)
      log(`crs serve: is the emulator running at ${endpoint}?`);
    return 1;
  }
}

function usage(err: unknown): number {
  log(`crs serve: ${(err as Error).message}\nusage:\n${SERVE_AWS_USAGE}`);
  return 2;
}
