// The key that signs acknowledge links on AWS: a Secrets Manager secret the stack generates (AckSigningSecret),
// read once per container by the functions that sign or verify links. Its own module, so that the ack function
// loads no SNS or SQS client with it. After a rotation (put-secret-value), Secrets Manager keeps the value before it
// under the staging label AWSPREVIOUS: the ack function verifies links under it too, so that links already sent
// work until they expire (docs/runbook.md: removing the label voids them, for a key that leaked).
import {
  GetSecretValueCommand,
  type GetSecretValueCommandOutput,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { AckKeys } from '#app/ack.ts';

/** HMAC keys shorter than this are refused: a short key makes acknowledge links guessable. */
const MIN_ACK_SECRET_BYTES = 32;

const keyOf = (out: GetSecretValueCommandOutput): Buffer | undefined =>
  out.SecretString !== undefined
    ? Buffer.from(out.SecretString, 'utf8')
    : out.SecretBinary
      ? Buffer.from(out.SecretBinary)
      : undefined;

/** Reads the acknowledge-link signing key, AWSCURRENT (once per cold start: the caller keeps it). */
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

/** How soon after a read the keys may be read again for a link that looks forged (forged links cost no more reads). */
export const ACK_KEYS_RELOAD_MS = 30_000;

/**
 * The ack function's keys read again for a link that looks forged, at most once per ACK_KEYS_RELOAD_MS after the
 * last read (`readAt`, the cold start's): a key put after this container read its keys signs the links of notify and
 * escalate containers started since, and the ack container would otherwise refuse them until replaced. A failed read
 * keeps the keys held (the link is judged by them).
 */
export function ackKeysReloader(
  client: SecretsManagerClient,
  secretId: string,
  now: () => number,
  readAt: number,
): () => Promise<AckKeys | undefined> {
  let last = readAt;
  return async () => {
    if (now() - last < ACK_KEYS_RELOAD_MS) return undefined;
    last = now();
    try {
      return await readAckKeys(client, secretId);
    } catch {
      return undefined;
    }
  };
}
