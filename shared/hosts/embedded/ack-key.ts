// The secret that signs acknowledge links (HMAC-SHA256, shared/app/ack.ts): 32 random bytes, created once per data
// directory with owner-only permissions and kept there, so links stay valid across restarts. Deleting the file
// makes a new secret at the next start and voids every link sent before.
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ACK_KEY_FILE = 'ack.key';
const KEY_BYTES = 32;

export function loadOrCreateAckSecret(dataDir: string): Buffer {
  const file = join(dataDir, ACK_KEY_FILE);
  for (;;) {
    try {
      const key = readFileSync(file);
      if (key.length !== KEY_BYTES) {
        throw new Error(
          `${file} is not a ${KEY_BYTES}-byte key; delete it to make a new one (acknowledge links already sent stop working)`,
        );
      }
      if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
      return key;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
    }
    try {
      // 'wx': created only if absent, so two starts racing never end up with different keys.
      writeFileSync(file, randomBytes(KEY_BYTES), { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
    }
  }
}
