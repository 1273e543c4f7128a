// Builds the CDK app: the stack from context, checked by cdk-nag (AwsSolutions and HIPAA Security) at synth.
// infra/app.ts runs it for `cdk synth/deploy`; the infra tests build the very same app.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { App, Validations, type AppProps } from 'aws-cdk-lib';
import { TableClass } from 'aws-cdk-lib/aws-dynamodb';
import { AwsSolutionsChecks, HIPAASecurityChecks } from 'cdk-nag';
import { PRODUCTION_AUDIT, type AuditOptions } from './audit.ts';
import type { CapacityLimits, CapacityMode } from './capacity.ts';
import type { LogLevel } from './function-defaults.ts';
import { acknowledgeFindings } from './nag-acknowledgements.ts';
import { pagingConfigFromContext } from './paging-config.ts';
import { CrsAlertingStack, DEFAULT_CONCURRENCY, type Concurrency, type CrsAlertingStackProps } from './stack.ts';
import { DeployInputError } from './deploy-input.ts';

export const STACK_NAME = 'CrsAlerting';

function jsonContext(app: App, key: string): unknown {
  const value = app.node.tryGetContext(key);
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new DeployInputError(`context ${key} is not valid JSON: ${(err as Error).message}`);
  }
}

/** A context flag: true, false, or their text (`-c production=true`); undefined when absent. */
function flagContext(app: App, key: string): boolean | undefined {
  const v = app.node.tryGetContext(key);
  if (v === undefined) return undefined;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new DeployInputError(`context ${key} must be true or false (got ${JSON.stringify(v)})`);
}

/** `-c concurrency='{"ingest":55,...}'`: the defaults with the functions given; a function it does not set is refused. */
function concurrencyContext(app: App): Concurrency {
  const given = jsonContext(app, 'concurrency');
  if (given === undefined) return DEFAULT_CONCURRENCY;
  if (typeof given !== 'object' || given === null || Array.isArray(given))
    throw new DeployInputError(
      `concurrency must be a JSON object such as ${JSON.stringify(DEFAULT_CONCURRENCY)} (got ${JSON.stringify(given)})`,
    );
  const known = Object.keys(DEFAULT_CONCURRENCY);
  for (const k of Object.keys(given))
    if (!known.includes(k))
      throw new DeployInputError(`concurrency: no function "${k}" (${known.join(', ')}; escalate always has 5)`);
  return { ...DEFAULT_CONCURRENCY, ...(given as Partial<Concurrency>) };
}

/**
 * A context value, or undefined when absent. An empty one (`-c capacity=$CAPACITY` with the variable unset) is
 * refused: it was taken as absent, and the stack deployed with the default instead of what the operator meant.
 */
function givenContext(app: App, key: string): unknown {
  const v = app.node.tryGetContext(key);
  if (typeof v === 'string' && v.trim() === '')
    throw new DeployInputError(
      `context ${key} is empty (got ${JSON.stringify(v)}): give a value, or leave the key out for the default`,
    );
  return v;
}

/** Days as decimal digits; `fraction`: with a decimal part too (1.5), as `crs serve` reads the same setting. */
function daysContext(app: App, key: string, o: { fraction?: boolean } = {}): number | undefined {
  const v = givenContext(app, key);
  if (v === undefined) return undefined;
  // Text that is not a number in decimal digits is refused here, by its context key and as given (the range is
  // checked later): Number() read "0x10" as 16 days and "1e3" as 1000.
  const digits = o.fraction ? /^\s*\d+(\.\d+)?\s*$/ : /^\s*\d+\s*$/;
  const n = typeof v === 'number' ? v : typeof v === 'string' && digits.test(v) ? Number(v) : Number.NaN;
  if (Number.isNaN(n))
    throw new DeployInputError(
      `${key} must be ${o.fraction ? 'a number of days in decimal digits' : 'a whole number of days'} (got ${JSON.stringify(v)})`,
    );
  return n;
}

/**
 * `-c fhirDrugCodes=FILE`: the site's FHIR drug codes, a JSON file as `crs serve --fhir-drug-codes FILE` reads (a path
 * relative to where cdk runs); the map itself when the context holds it (cdk.json, the emulator host's synthesis).
 * Its entries are checked by the stack.
 */
function drugCodesContext(app: App, cwd = process.cwd()): CrsAlertingStackProps['fhirDrugCodes'] {
  const given = givenContext(app, 'fhirDrugCodes');
  if (given === undefined) return undefined;
  if (Array.isArray(given)) return { json: JSON.stringify(given) };
  if (typeof given !== 'string')
    throw new DeployInputError(
      `fhirDrugCodes must name a JSON file of the site drug codes, [{ "system", "code", "drug" }] (got ${JSON.stringify(given)})`,
    );
  const file = resolve(cwd, given);
  try {
    return { json: readFileSync(file, 'utf8').replace(/^\uFEFF/, ''), file };
  } catch (err) {
    throw new DeployInputError(`cannot read fhirDrugCodes ${file}: ${(err as Error).message}`);
  }
}

/** `-c historyTableClass=standard|infrequent-access`: anything else stops the synth, naming the choices. */
function historyTableClassFromContext(value: string): TableClass {
  const classes: Record<string, TableClass> = {
    standard: TableClass.STANDARD,
    'infrequent-access': TableClass.STANDARD_INFREQUENT_ACCESS,
  };
  const c = classes[value];
  if (!c) throw new DeployInputError(`historyTableClass: "${value}" is not one of ${Object.keys(classes).join(', ')}`);
  return c;
}

/** The audit options from context; `production` turns CloudTrail data events and monthly backups on by default. */
function auditFromContext(app: App): Partial<AuditOptions> {
  const given: Partial<AuditOptions> = {};
  const set = <K extends keyof AuditOptions>(k: K, v: AuditOptions[K] | undefined) => {
    if (v !== undefined) given[k] = v;
  };
  set('dataEvents', flagContext(app, 'auditDataEvents'));
  set('vaultLock', flagContext(app, 'backupVaultLock'));
  set('backupRetentionDays', daysContext(app, 'backupRetentionDays'));
  set('monthlyRetentionDays', daysContext(app, 'backupMonthlyRetentionDays'));
  set('trailRetentionDays', daysContext(app, 'auditTrailRetentionDays'));
  set('copyVaultArn', app.node.tryGetContext('backupCopyVaultArn') as string | undefined);
  set('historyBackups', app.node.tryGetContext('auditBackups') as AuditOptions['historyBackups'] | undefined);
  set('coldStorageAfterDays', daysContext(app, 'backupColdStorageAfterDays'));
  return { ...(flagContext(app, 'production') ? PRODUCTION_AUDIT : {}), ...given };
}

/** Every context key the app reads (`-c key=value`); docs/aws.md and docs/runbook.md say what each does. */
const CONTEXT_KEYS = [
  'pagingConfig',
  'paging',
  'gradingConfig',
  'concurrency',
  'logLevel',
  'capacity',
  'capacityLimits',
  'historyTableClass',
  'routeThrottles',
  'hl7Zone',
  'hl7PatientAuthority',
  'fhirPatientSystem',
  'fhirDrugCodes',
  'maxObservationAgeDays',
  'production',
  'auditDataEvents',
  'auditBackups',
  'auditTrailRetentionDays',
  'backupVaultLock',
  'backupRetentionDays',
  'backupMonthlyRetentionDays',
  'backupColdStorageAfterDays',
  'backupCopyVaultArn',
  'account',
  'region',
] as const;

/**
 * A context key the app does not read is refused: a typo (`-c capacty=provisioned`, `-c backupVaultlock=true`) was
 * ignored, and the stack deployed without what the operator asked for. The CDK's own keys (feature flags `@aws-cdk/...`,
 * `aws:cdk:...`, the lookups cached in cdk.context.json) all have a colon or an @; `acknowledged-issue-numbers` is
 * the CLI's too.
 */
function checkContextKeys(app: App): void {
  const known: readonly string[] = CONTEXT_KEYS;
  for (const key of Object.keys(app.node.getAllContext())) {
    if (known.includes(key) || key.includes(':') || key.startsWith('@') || key === 'acknowledged-issue-numbers')
      continue;
    const like = known.find(
      (k) => k.toLowerCase() === key.toLowerCase() || editDistance(k.toLowerCase(), key.toLowerCase()) <= 2,
    );
    throw new DeployInputError(
      `context ${JSON.stringify(key)} is not an option of this stack${like ? ` (did you mean ${like}?)` : ''}: the options are ${known.join(', ')} (docs/aws.md)`,
    );
  }
}

/** Levenshtein distance, for naming the option a typo meant. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/**
 * The account and region (context, else the CLI's `CDK_DEFAULT_*`): both or neither. `-c region=eu-west-1` without an
 * account was dropped, and the environment-agnostic stack deployed wherever the CLI's credentials pointed.
 */
function environmentFromContext(app: App): { account?: string; region?: string } {
  const given = (key: 'account' | 'region') => {
    const v = app.node.tryGetContext(key);
    return v === undefined ? undefined : String(v);
  };
  const account = given('account') ?? process.env.CDK_DEFAULT_ACCOUNT;
  const region = given('region') ?? process.env.CDK_DEFAULT_REGION;
  if (given('account') !== undefined && !/^\d{12}$/.test(account!))
    throw new DeployInputError(
      `context account must be an AWS account id of 12 digits (got ${JSON.stringify(given('account'))})`,
    );
  if (given('region') !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region!))
    throw new DeployInputError(
      `context region must be an AWS region such as eu-west-1 (got ${JSON.stringify(given('region'))})`,
    );
  if ((given('account') !== undefined || given('region') !== undefined) && (!account || !region))
    throw new DeployInputError(
      `context ${given('account') !== undefined ? 'account' : 'region'} is given without ${account ? 'region' : 'account'} (context or the CLI's credentials): the stack would deploy wherever the CLI points; give both`,
    );
  return { ...(account ? { account } : {}), ...(region ? { region } : {}) };
}

export function buildApp(props: AppProps = {}): { app: App; stack: CrsAlertingStack } {
  const app = new App(props);
  checkContextKeys(app);
  const { account, region } = environmentFromContext(app);
  const concurrency = concurrencyContext(app);
  const fhirDrugCodes = drugCodesContext(app); // read once
  const stack = new CrsAlertingStack(app, STACK_NAME, {
    // Without an account and region the stack is environment-agnostic, so it synthesizes offline.
    ...(account && region ? { env: { account: String(account), region: String(region) } } : {}),
    description: 'CRS and ICANS grading and team paging for CAR T-cell and bispecific therapy',
    paging: pagingConfigFromContext((k) => app.node.tryGetContext(k)),
    gradingOverrides: jsonContext(app, 'gradingConfig') as Record<string, unknown> | undefined,
    concurrency,
    ...(givenContext(app, 'hl7Zone') !== undefined ? { hl7Zone: String(givenContext(app, 'hl7Zone')) } : {}),
    ...(app.node.tryGetContext('hl7PatientAuthority') !== undefined
      ? { hl7PatientAuthority: String(app.node.tryGetContext('hl7PatientAuthority')) }
      : {}),
    ...(app.node.tryGetContext('fhirPatientSystem') !== undefined
      ? { fhirPatientSystem: String(app.node.tryGetContext('fhirPatientSystem')) }
      : {}),
    ...(fhirDrugCodes !== undefined ? { fhirDrugCodes } : {}),
    // In decimal digits only, as the other day counts: Number() read "0x10" as 16 days and "1e3" as 1000.
    ...(daysContext(app, 'maxObservationAgeDays', { fraction: true }) !== undefined
      ? { maxObservationAgeDays: daysContext(app, 'maxObservationAgeDays', { fraction: true })! }
      : {}),
    ...(givenContext(app, 'logLevel') !== undefined
      ? { logLevel: String(givenContext(app, 'logLevel')).toUpperCase() as LogLevel }
      : {}),
    ...(givenContext(app, 'capacity') !== undefined
      ? { capacity: String(givenContext(app, 'capacity')) as CapacityMode }
      : {}),
    ...(givenContext(app, 'capacityLimits') !== undefined
      ? { capacityLimits: jsonContext(app, 'capacityLimits') as Partial<CapacityLimits> }
      : {}),
    ...(givenContext(app, 'historyTableClass') !== undefined
      ? { historyTableClass: historyTableClassFromContext(String(givenContext(app, 'historyTableClass'))) }
      : {}),
    routeThrottles: jsonContext(app, 'routeThrottles') as CrsAlertingStackProps['routeThrottles'],
    audit: auditFromContext(app),
  });
  acknowledgeFindings(stack);
  // A finding that is not acknowledged (with its reason) stops the synth.
  Validations.of(app).addPlugins(
    new AwsSolutionsChecks(app, { verbose: true }),
    new HIPAASecurityChecks(app, { verbose: true }),
  );
  return { app, stack };
}
