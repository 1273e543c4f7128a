// The secret that signs acknowledge links (HMAC-SHA256, shared/app/ack.ts): 32 random bytes, created once per data
// directory with owner-only permissions and kept there, so links stay valid across restarts. Deleting the file
// makes a new secret at the next start and voids every link sent before.
//
// `crs ack-key rotate` (2026-12-06) writes a new key and keeps the one it replaces as ack.key.previous: links are
// signed with the new key and verified under it, then under the previous one, so the links already sent work until
// they expire. `--drop-previous` (a key that leaked) keeps none. crs serve reads both files at start only.
import type { AckKeys } from '#app/ack.ts';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ACK_KEY_FILE = 'ack.key';
/** The key before the last rotation (absent: never rotated, or dropped). */
export const ACK_PREVIOUS_KEY_FILE = 'ack.key.previous';
const KEY_BYTES = 32;

/** A key file's 32 bytes, made owner-only if others could read it; undefined when there is no such file. */
function readKey(file: string): Buffer | undefined {
  let key: Buffer;
  try {
    key = readFileSync(file);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
  if (key.length !== KEY_BYTES) {
    throw new Error(
      `${file} is not a ${KEY_BYTES}-byte key; delete it to make a new one (acknowledge links already sent stop working)`,
    );
  }
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  return key;
}

export function loadOrCreateAckSecret(dataDir: string): Buffer {
  const file = join(dataDir, ACK_KEY_FILE);
  for (;;) {
    const key = readKey(file);
    if (key) return key;
    try {
      // 'wx': created only if absent, so two starts racing never end up with different keys.
      writeFileSync(file, randomBytes(KEY_BYTES), { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
    }
  }
}

/** The keys crs serve signs and verifies links with: ack.key (made at the first start), then ack.key.previous. */
export function loadAckKeys(dataDir: string): AckKeys {
  const current = loadOrCreateAckSecret(dataDir);
  return { current, previous: readKey(join(dataDir, ACK_PREVIOUS_KEY_FILE)) };
}

/** Writes `key` to `file` whole or not at all (a crash leaves the old file), owner-only. */
function replaceKey(file: string, key: Buffer): void {
  const temp = `${file}.new`;
  rmSync(temp, { force: true });
  writeFileSync(temp, key, { mode: 0o600, flag: 'wx' });
  renameSync(temp, file);
}

/**
 * A new ack.key; the key it replaces becomes ack.key.previous (links it signed verify until they expire), or, with
 * `dropPrevious`, no previous key is kept (every link sent before stops working). The previous key is written first:
 * a crash between the two leaves it the same as the current one, which changes nothing.
 */
export function rotateAckKey(dataDir: string, o: { dropPrevious?: boolean } = {}): { keptPrevious: boolean } {
  const previous = join(dataDir, ACK_PREVIOUS_KEY_FILE);
  const current = readKey(join(dataDir, ACK_KEY_FILE));
  if (o.dropPrevious || !current) rmSync(previous, { force: true });
  else replaceKey(previous, current);
  replaceKey(join(dataDir, ACK_KEY_FILE), randomBytes(KEY_BYTES));
  return { keptPrevious: !o.dropPrevious && current !== undefined };
}

/** Removes ack.key.previous (it leaked): the links it signed stop working once crs serve restarts. */
export function dropPreviousAckKey(dataDir: string): boolean {
  const file = join(dataDir, ACK_PREVIOUS_KEY_FILE);
  if (!existsSync(file)) return false;
  rmSync(file);
  return true;
}
