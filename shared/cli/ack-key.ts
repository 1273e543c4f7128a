// `crs ack-key rotate [--data DIR] [--drop-previous]` and `crs ack-key drop-previous [--data DIR]` (2026-12-06): a
// new acknowledge-link key for crs serve, keeping the one it replaces so that the links already sent work until
// they expire; or none (a key that leaked). A running crs serve reads the files again within ACK_KEY_FILES_CHECK_MS
// (2026-12-06; it was told to restart before). On AWS (`--backend aws`, 2026-12-07) the same with the stack's
// AckSigningSecret: a new value put with Secrets Manager (the one it replaces stays AWSPREVIOUS), or that label
// removed; it was refused before (exit 2), naming the aws secretsmanager commands of docs/runbook.md.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DB_FILE, dataDirLocked } from '#adapters/sqlite/db.ts';
import { ACK_KEY_FILE, ACK_KEY_FILES_CHECK_MS, dropPreviousAckKey, rotateAckKey } from '#hosts/embedded/ack-key.ts';
import { DEFAULT_DATA_DIR } from '#hosts/embedded/embedded.ts';
import { inline, isOneOf, shown, parseFlags } from './flags.ts';

export const ACK_KEY_USAGE = `  crs ack-key rotate [--data DIR] [--drop-previous]
      a new key for crs serve's acknowledge links (ack.key); the one it replaces is kept (ack.key.previous), so the
      links already sent work until they expire (paging.ackLinkMinutes). --drop-previous keeps none: for a key that
      leaked (every link sent before stops working). A running crs serve uses it within 2 s, no restart
  crs ack-key drop-previous [--data DIR]
      forget the previous key (it leaked): the links it signed stop working (in crs serve within 2 s)
  crs ack-key rotate [--drop-previous] --backend aws [--outputs FILE]
  crs ack-key drop-previous --backend aws [--outputs FILE]
      the same on AWS, with the stack's AckSigningSecret (AckSecretArn in the outputs file, or CRS_ACK_SECRET_ARN):
      rotate puts a new value with Secrets Manager, the one it replaces stays AWSPREVIOUS; drop-previous removes that
      label. Warm functions use it within 5 min (ACK_KEYS_MAX_AGE_MS), no redeploy. AWS_REGION, credentials and
      AWS_ENDPOINT_URL as for the AWS CLI
`;

class AckKeyUsageError extends Error {}

/** The flags `crs ack-key` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
/** What `crs ack-key` does. */
export const ACK_KEY_ACTIONS = ['rotate', 'drop-previous'] as const;

export const ACK_KEY_OPTIONS = {
  /** embedded (the default) or aws (the stack's AckSigningSecret). */
  backend: { type: 'string' },
  data: { type: 'string' },
  'drop-previous': { type: 'boolean' },
  /** aws: the stack's outputs file, for AckSecretArn (or CRS_ACK_SECRET_ARN). */
  outputs: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function ackKeyCommand(args: string[]): Promise<number> {
  try {
    const { values: v, positionals } = parseFlags({
      args,
      allowPositionals: true,
      options: ACK_KEY_OPTIONS,
    });
    if (v.help) {
      process.stdout.write(`usage:\n${ACK_KEY_USAGE}`);
      return 0;
    }
    const [action, ...extra] = positionals;
    if (!isOneOf(ACK_KEY_ACTIONS, action))
      throw new AckKeyUsageError(`ack-key needs rotate or drop-previous (got ${shown(action ?? '')})`);
    if (extra.length > 0) throw new AckKeyUsageError(`ack-key ${action} takes no more arguments`);
    if (v.backend !== undefined && v.backend !== 'embedded' && v.backend !== 'aws')
      throw new AckKeyUsageError(`--backend must be embedded or aws (got ${shown(v.backend)})`);
    if (action === 'drop-previous' && v['drop-previous'])
      throw new AckKeyUsageError('--drop-previous is for rotate; drop-previous alone forgets the previous key');
    if (v.backend === 'aws') {
      if (v.data !== undefined) throw new AckKeyUsageError("--data is crs serve's; on AWS give --outputs FILE");
      return await awsAckKey(action, v.outputs, v['drop-previous'] === true);
    }
    if (v.outputs !== undefined) throw new AckKeyUsageError('--outputs is for --backend aws');
    const dir = resolve(v.data ?? DEFAULT_DATA_DIR);
    // A directory crs serve never ran on gets no key: the wrong --data would otherwise be taken quietly.
    if (!existsSync(join(dir, ACK_KEY_FILE)) && !existsSync(join(dir, DB_FILE)))
      throw new AckKeyUsageError(`no crs data in ${dir} (give the data directory of crs serve with --data DIR)`);
    let said: string;
    if (action === 'rotate') {
      const { keptPrevious } = rotateAckKey(dir, { dropPrevious: v['drop-previous'] === true });
      said = keptPrevious
        ? `new acknowledge-link key in ${dir}; the one it replaces is kept: links already sent work until they expire`
        : `new acknowledge-link key in ${dir}; no previous key kept: links sent before stop working`;
    } else {
      said = dropPreviousAckKey(dir)
        ? `previous acknowledge-link key removed from ${dir}: the links it signed stop working`
        : `no previous acknowledge-link key in ${dir}: nothing to drop`;
    }
    // A running crs serve reads the files again when it signs or verifies a link, at most every few seconds.
    const restart = dataDirLocked(dir)
      ? `crs serve is running on it: in use within ${ACK_KEY_FILES_CHECK_MS / 1000} s, no restart`
      : 'crs serve uses it from its next start';
    process.stdout.write(`${said}\n${restart}\n`);
    return 0;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e instanceof AckKeyUsageError || e.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`crs ack-key: ${inline(e.message)}\nusage:\n${ACK_KEY_USAGE}`);
      return 2;
    }
    process.stderr.write(`crs ack-key: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
    return 1;
  }
}

/** Says what was done with the secret, or in one line what failed and what to check (exit 1). */
async function awsAckKey(
  action: (typeof ACK_KEY_ACTIONS)[number],
  outputs: string | undefined,
  dropPrevious: boolean,
): Promise<number> {
  const { OperatorUsageError, need, operatorAws, operatorVariables } = await import('./aws-operator.ts');
  const { ENV } = await import('#adapters/aws/env.ts');
  let arn: string;
  let settings: { region: string };
  try {
    arn = need(operatorVariables(outputs, process.env), ENV.ackSecretArn);
    settings = await operatorAws();
  } catch (err) {
    if (err instanceof OperatorUsageError) throw new AckKeyUsageError(err.message);
    throw err;
  }
  const { SecretsManagerClient } = await import('@aws-sdk/client-secrets-manager');
  const client = new SecretsManagerClient(settings);
  const { ACK_KEYS_MAX_AGE_MS, dropPreviousAckSecret, dropReplacedAckSecret, rotateAckSecret } = await import(
    '#adapters/aws/ack-secret.ts'
  );
  const minutes = ACK_KEYS_MAX_AGE_MS / 60_000;
  const inUse = `warm containers sign with the new key within ${minutes} min (they read the secret again), no redeploy`;
  const voided = `warm ack containers stop taking them within ${minutes} min, no redeploy`;
  let failed = `${action === 'rotate' ? 'putting a new value in' : 'removing AWSPREVIOUS from'} ${arn} failed`;
  try {
    if (action === 'rotate') {
      const { version, replaced } = await rotateAckSecret(client, arn);
      const put = `new acknowledge-link key in ${arn} (version ${version}, AWSCURRENT)`;
      if (!dropPrevious) {
        process.stdout.write(
          `${put}; the one it replaces${replaced ? ` (version ${replaced})` : ''} is kept as AWSPREVIOUS: links already sent work until they expire, unless it is dropped (crs ack-key drop-previous --backend aws)\n${inUse}\n`,
        );
        return 0;
      }
      failed = `${put}, but removing AWSPREVIOUS failed (the previous key still verifies: crs ack-key drop-previous --backend aws once mended)`;
      // From the version the put replaced alone (2026-12-07): after a rotation by someone else since the put, the
      // version carrying AWSPREVIOUS is a key this one did not mean to void.
      const drop = replaced === undefined ? undefined : await dropReplacedAckSecret(client, arn, replaced);
      if (drop?.removed === false) {
        const key = drop.replacedVerifies ? 'still verifies (it is AWSCURRENT)' : 'verifies no link';
        process.stderr.write(
          `crs ack-key: new acknowledge-link key put in ${arn} (version ${version}), but the version it replaced (${replaced}) no longer carries AWSPREVIOUS: the secret changed meanwhile (AWSCURRENT on ${drop.current ?? 'none'}, AWSPREVIOUS on ${drop.previous ?? 'none'}), nothing removed; the key it replaced ${key}. See which key is which (aws secretsmanager describe-secret) before any crs ack-key drop-previous --backend aws\n`,
        );
        return 1;
      }
      process.stdout.write(
        `${put}; no previous key kept${drop ? ` (AWSPREVIOUS removed from version ${replaced})` : ''}: links sent before stop working\n${inUse}; ${voided}\n`,
      );
      return 0;
    }
    const dropped = await dropPreviousAckSecret(client, arn);
    process.stdout.write(
      dropped
        ? `previous acknowledge-link key removed from ${arn} (AWSPREVIOUS removed from version ${dropped}): the links it signed stop working\n${voided}\n`
        : `no previous acknowledge-link key in ${arn} (no version is AWSPREVIOUS): nothing to drop\n`,
    );
    return 0;
  } catch (err) {
    const { name, message } = err as Error;
    process.stderr.write(`crs ack-key: ${failed}: ${inline(`${name}: ${message}`)}; ${toCheck(name)}\n`);
    return 1;
  } finally {
    client.destroy();
  }
}

/** What to check for an error Secrets Manager (or the SDK) answered. */
function toCheck(name: string): string {
  if (name === 'ResourceNotFoundException')
    return "check AckSecretArn in the stack's outputs (or CRS_ACK_SECRET_ARN) and AWS_REGION: the secret's account and region";
  if (/AccessDenied|KMS|UnrecognizedClient|InvalidClientTokenId|ExpiredToken|SignatureDoesNotMatch/.test(name))
    return "check the operator's credentials and IAM permissions: secretsmanager:DescribeSecret, PutSecretValue and UpdateSecretVersionStage on the secret, kms:GenerateDataKey and kms:Decrypt on the stack's key";
  if (name === 'CredentialsProviderError') return 'check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...)';
  return 'check AWS_REGION, the credentials and AWS_ENDPOINT_URL; docs/runbook.md, "Rotating the acknowledge-link key", has the aws CLI way';
}
