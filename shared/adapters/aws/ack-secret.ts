// The key that signs acknowledge links on AWS: a Secrets Manager secret the stack generates (AckSigningSecret),
// read at a container's cold start by the functions that sign or verify links, and again once ACK_KEYS_MAX_AGE_MS
// old. Its own module, so that the ack function loads no SNS or SQS client with it. After a rotation (put-secret-value), Secrets Manager keeps the value before it
// under the staging label AWSPREVIOUS: the ack function verifies links under it too, so that links already sent
// work until they expire (docs/runbook.md: removing the label voids them, for a key that leaked).
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  type GetSecretValueCommandOutput,
  PutSecretValueCommand,
  type SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { randomInt, randomUUID } from 'node:crypto';
import type { AckKeys } from '#app/ack.ts';
import type { AckKeysSource } from '#app/ack-keys.ts';
import { ENV, requireEnv } from './env.ts';

/**
 * The value the stack generates for AckSigningSecret (infra/stack.ts) and `crs ack-key rotate --backend aws` puts
 * (2026-12-07): 64 letters and digits (381 bits), whose UTF-8 bytes are the HMAC key.
 */
export const ACK_SECRET_FORMAT = { passwordLength: 64, excludePunctuation: true, includeSpace: false } as const;
const ACK_SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A new value of the secret, in the stack's format. */
export const newAckSecretValue = (): string =>
  Array.from({ length: ACK_SECRET_FORMAT.passwordLength }, () => ACK_SECRET_ALPHABET[randomInt(62)]).join('');

/** HMAC keys shorter than this are refused: a short key makes acknowledge links guessable. */
const MIN_ACK_SECRET_BYTES = 32;

const keyOf = (out: GetSecretValueCommandOutput): Buffer | undefined =>
  out.SecretString !== undefined
    ? Buffer.from(out.SecretString, 'utf8')
    : out.SecretBinary
      ? Buffer.from(out.SecretBinary)
      : undefined;

/** Reads the acknowledge-link signing key, AWSCURRENT (the caller keeps it: ackKeysSource says for how long). */
export async function readAckSecret(client: SecretsManagerClient, secretId: string): Promise<Buffer> {
  const key = keyOf(await client.send(new GetSecretValueCommand({ SecretId: secretId })));
  if (!key || key.length < MIN_ACK_SECRET_BYTES)
    throw new Error(`the acknowledge-link secret must be at least ${MIN_ACK_SECRET_BYTES} bytes`);
  return key;
}

/**
 * The keys a function that verifies links needs: AWSCURRENT and AWSPREVIOUS, read at once. No AWSPREVIOUS (a secret
 * never rotated, or its label removed) is normal. One shorter than 32 bytes is left out: the functions refused it
 * while it was current, so no link was signed under it (and refusing it here would stop every acknowledgement).
 */
export async function readAckKeys(client: SecretsManagerClient, secretId: string): Promise<AckKeys> {
  const previousOf = async () => {
    try {
      return keyOf(await client.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSPREVIOUS' })));
    } catch (err) {
      if ((err as Error).name === 'ResourceNotFoundException') return undefined;
      throw err;
    }
  };
  const [current, previous] = await Promise.all([readAckSecret(client, secretId), previousOf()]);
  return { current, previous: previous && previous.length >= MIN_ACK_SECRET_BYTES ? previous : undefined };
}

/**
 * How old the keys a warm container holds may get before it reads them again to sign or verify a link (2026-12-06):
 * within this of a put-secret-value (or AWSPREVIOUS removed) every new link is signed with the new key (and a dropped
 * key stops verifying) without replacing containers. Only when a link is signed or verified: a container busy all
 * month reads at most 12 times an hour (notify and escalate AWSCURRENT, ack both labels: 2 requests), at $0.05 per
 * 10,000 requests under $0.09 a month a container.
 */
export const ACK_KEYS_MAX_AGE_MS = 5 * 60_000;

/** How soon after a read (or a failed one) the keys may be read again for a link that looks forged. */
export const ACK_KEYS_RELOAD_MS = 30_000;

/**
 * The same for a link issued here (its claims are in the pages table) that the keys held call forged (2026-12-06): a
 * notify container signed it with a key put since this container read its keys, so the ack function reads them again
 * at once rather than answer the clinician 403 for up to ACK_KEYS_RELOAD_MS. The bound is for one genuine link under
 * a dropped key, opened again and again: at most a read (2 requests) a second per container.
 */
export const ACK_KEYS_ISSUED_RELOAD_MS = 1_000;

/**
 * How long a warm container's re-read may take before it is given up and the keys held sign (a Secrets Manager call
 * that hangs would otherwise hold the page back until the function's timeout). Not at a cold start: no key is held.
 */
export const ACK_KEYS_READ_TIMEOUT_MS = 2_000;

/**
 * Where a function's keys are read again (#app/ack-keys.ts): `read`, readAckKeys for the ack function (it verifies
 * under both labels), AWSCURRENT alone for notify and escalate (they only sign). `readAt`: the cold start's read. A
 * failed read keeps the keys held and is told to `onReadFailed` (a metric and a log line, the error's name only).
 */
export function ackKeysSource(
  read: () => Promise<AckKeys>,
  readAt: number,
  onReadFailed?: (err: unknown) => void,
): AckKeysSource {
  return {
    read,
    readAt,
    maxAgeMs: ACK_KEYS_MAX_AGE_MS,
    minGapMs: ACK_KEYS_RELOAD_MS,
    issuedLinkGapMs: ACK_KEYS_ISSUED_RELOAD_MS,
    readTimeoutMs: ACK_KEYS_READ_TIMEOUT_MS,
    ...(onReadFailed ? { onReadFailed } : {}),
  };
}

/** The link keys a function starts with, spread into its pager's settings, and where it reads them again. */
export interface AckKeySettings {
  ackSecret: Buffer;
  previousAckSecret?: Buffer | undefined;
  ackKeysSource: AckKeysSource;
}

/**
 * The keys of the secret the stack names (ENV.ackSecretArn), read at a cold start, and the source that reads them
 * again: `verifies`, both labels (the ack function); else AWSCURRENT alone (notify and escalate only sign).
 */
export async function ackKeysFromEnv(
  secrets: SecretsManagerClient,
  o: { verifies: boolean; now: number; onReadFailed?: ((err: unknown) => void) | undefined; env?: NodeJS.ProcessEnv },
): Promise<AckKeySettings> {
  const secretId = requireEnv(ENV.ackSecretArn, o.env);
  const read = o.verifies
    ? () => readAckKeys(secrets, secretId)
    : async (): Promise<AckKeys> => ({ current: await readAckSecret(secrets, secretId) });
  const keys = await read();
  return {
    ackSecret: keys.current,
    ...(keys.previous ? { previousAckSecret: keys.previous } : {}),
    ackKeysSource: ackKeysSource(read, o.now, o.onReadFailed),
  };
}

/**
 * The versions of the secret that carry AWSCURRENT and AWSPREVIOUS, and each version's labels (DescribeSecret: the
 * values are never read).
 */
async function labelledVersions(
  client: SecretsManagerClient,
  secretId: string,
): Promise<{ current: string | undefined; previous: string | undefined; stages: Record<string, string[]> }> {
  const stages = (await client.send(new DescribeSecretCommand({ SecretId: secretId }))).VersionIdsToStages ?? {};
  const carrying = (label: string) => Object.keys(stages).find((v) => stages[v]?.includes(label));
  return { current: carrying('AWSCURRENT'), previous: carrying('AWSPREVIOUS'), stages };
}

/**
 * AWSPREVIOUS removed from `version` alone: Secrets Manager refuses the call when another version carries the label
 * by then, rather than remove it from that one.
 */
const removePrevious = (client: SecretsManagerClient, secretId: string, version: string) =>
  client.send(
    new UpdateSecretVersionStageCommand({
      SecretId: secretId,
      VersionStage: 'AWSPREVIOUS',
      RemoveFromVersionId: version,
    }),
  );

/**
 * `crs ack-key rotate --backend aws` (2026-12-07): a new value, AWSCURRENT; Secrets Manager moves AWSPREVIOUS to the
 * value it replaces (`replaced`), which the ack function verifies under until the links it signed expire. The
 * request's token is the new version's id, so a retry of the request puts no second value (two rotations void the
 * first key's links).
 */
export async function rotateAckSecret(
  client: SecretsManagerClient,
  secretId: string,
): Promise<{ version: string; replaced: string | undefined }> {
  const { current } = await labelledVersions(client, secretId);
  const version = randomUUID();
  const put = await client.send(
    new PutSecretValueCommand({ SecretId: secretId, SecretString: newAckSecretValue(), ClientRequestToken: version }),
  );
  return { version: put.VersionId ?? version, replaced: current };
}

/**
 * `crs ack-key drop-previous --backend aws` (2026-12-07): AWSPREVIOUS removed from its version, so that no function
 * verifies under it (a key that leaked). The version it was on; undefined when none carried it (nothing to drop).
 */
export async function dropPreviousAckSecret(
  client: SecretsManagerClient,
  secretId: string,
): Promise<string | undefined> {
  const { previous } = await labelledVersions(client, secretId);
  if (previous === undefined) return undefined;
  await removePrevious(client, secretId, previous);
  return previous;
}

/** What dropReplacedAckSecret did: the label removed, or the labels it found instead (nothing removed). */
export type ReplacedDrop =
  | { removed: true }
  | { removed: false; current: string | undefined; previous: string | undefined; replacedVerifies: boolean };

/**
 * `crs ack-key rotate --drop-previous --backend aws` after its put (2026-12-07): AWSPREVIOUS removed from the version
 * the put replaced (rotateAckSecret's `replaced`), and from no other. When that version no longer carries it (a
 * rotation or a drop by someone else since the put), nothing is removed: the label is then on a key this rotation
 * did not mean to void (the new one, or theirs). Until 2026-12-07 the label was removed from whichever version
 * carried it after the put.
 */
export async function dropReplacedAckSecret(
  client: SecretsManagerClient,
  secretId: string,
  replaced: string,
): Promise<ReplacedDrop> {
  const { current, previous, stages } = await labelledVersions(client, secretId);
  if (previous !== replaced) {
    const labels = stages[replaced] ?? [];
    return { removed: false, current, previous, replacedVerifies: labels.includes('AWSCURRENT') };
  }
  await removePrevious(client, secretId, replaced);
  return { removed: true };
}
