// The key that signs acknowledge links on AWS: a Secrets Manager secret the stack generates (AckSigningSecret),
// read once per container by the functions that sign or verify links. Its own module, so that the ack function
// loads no SNS or SQS client with it.
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/** HMAC keys shorter than this are refused: a short key makes acknowledge links guessable. */
const MIN_ACK_SECRET_BYTES = 32;

/** Reads the acknowledge-link signing key (once per cold start: the caller keeps it). */
export async function readAckSecret(client: SecretsManagerClient, secretId: string): Promise<Buffer> {
  const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
  const key =
    out.SecretString !== undefined
      ? Buffer.from(out.SecretString, 'utf8')
      : out.SecretBinary
        ? Buffer.from(out.SecretBinary)
        : undefined;
  if (!key || key.length < MIN_ACK_SECRET_BYTES)
    throw new Error(`the acknowledge-link secret must be at least ${MIN_ACK_SECRET_BYTES} bytes`);
  return key;
}
