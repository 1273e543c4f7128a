// The secret that signs acknowledge links (HMAC-SHA256, shared/app/ack.ts): 32 random bytes, created once per data
// directory with owner-only permissions and kept there, so links stay valid across restarts. Deleting the file
// makes a new secret at the next start and voids every link sent before.
//
// `crs ack-key rotate` (2026-12-06) writes a new key and keeps the one it replaces as ack.key.previous: links are
// signed with the new key and verified under it, then under the previous one, so the links already sent work until
// they expire. `--drop-previous` (a key that leaked) keeps none. crs serve reads both files at start, and again when
// it signs or verifies a link and read them more than ACK_KEY_FILES_CHECK_MS ago (2026-12-06): no restart.
import type { AckKeys } from '#app/ack.ts';
import { sameAckKeys, type AckKeysSource } from '#app/ack-keys.ts';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ACK_KEY_FILE = 'ack.key';
/** The key before the last rotation (absent: never rotated, or dropped). */
export const ACK_PREVIOUS_KEY_FILE = 'ack.key.previous';
const KEY_BYTES = 32;

/**
 * A key file's 32 bytes, made owner-only if others could read it; undefined when there is no such file. `advice`: what
 * a start's error says to do (a running server's reads keep the keys in hand and give none).
 */
function readKey(file: string, advice?: string): Buffer | undefined {
  let key: Buffer;
  try {
    key = readFileSync(file);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
  if (key.length !== KEY_BYTES) {
    throw new Error(`${file} is not a ${KEY_BYTES}-byte key${advice ? `; ${advice}` : ''}`);
  }
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  return key;
}

/** What to do with an ack.key that is not a key, at a start or a rotation. */
const DAMAGED_KEY_ADVICE = 'delete it to make a new one (acknowledge links already sent stop working)';

export function loadOrCreateAckSecret(dataDir: string): Buffer {
  const file = join(dataDir, ACK_KEY_FILE);
  for (;;) {
    const key = readKey(file, DAMAGED_KEY_ADVICE);
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
  const previous = readKey(
    join(dataDir, ACK_PREVIOUS_KEY_FILE),
    'delete it to start without a previous key (links signed under it stop working)',
  );
  return { current, previous };
}

/**
 * How old crs serve's keys may get before it reads the files again, to sign or verify a link: a rotation or a dropped
 * previous key is in use within this. Two small files read at most this often, only while links are used.
 */
export const ACK_KEY_FILES_CHECK_MS = 2_000;

/** ack.key and ack.key.previous as crs serve reads them while it runs: ack.key is never made here. */
function readAckKeyFiles(dataDir: string): AckKeys {
  const current = readKey(join(dataDir, ACK_KEY_FILE));
  if (!current) throw new Error(`${join(dataDir, ACK_KEY_FILE)} is missing`);
  return { current, previous: readKey(join(dataDir, ACK_PREVIOUS_KEY_FILE)) };
}

/**
 * Where crs serve reads its keys again (#app/ack-keys.ts), `readAt` its start's read of `held`. A file missing or
 * not a key keeps the keys in hand; the log says so, and says when other keys are in use, once each (every pager
 * of the server reads them).
 */
export function ackKeyFilesSource(
  dataDir: string,
  held: AckKeys,
  readAt: number,
  log: (line: string) => void,
): AckKeysSource {
  let said = held;
  let failure: string | undefined;
  return {
    read: async () => readAckKeyFiles(dataDir),
    readAt,
    maxAgeMs: ACK_KEY_FILES_CHECK_MS,
    minGapMs: ACK_KEY_FILES_CHECK_MS,
    onRead: (keys) => {
      failure = undefined;
      if (sameAckKeys(keys, said)) return;
      const current = keys.current.equals(said.current) ? 'the same ack.key' : 'a new ack.key';
      said = keys;
      log(
        `crs serve: acknowledge-link keys read again from ${dataDir}: ${current} signs new links; ${
          keys.previous
            ? 'ack.key.previous verifies links sent before'
            : 'no previous key (links sent before under another key are refused)'
        }`,
      );
    },
    onReadFailed: (err) => {
      const why = err instanceof Error ? err.message : String(err);
      if (why === failure) return;
      failure = why;
      log(
        `crs serve: acknowledge-link keys not read again (${why}); links are signed and verified with the keys in hand until the files are mended`,
      );
    },
  };
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
  const current = readKey(join(dataDir, ACK_KEY_FILE), DAMAGED_KEY_ADVICE);
  if (o.dropPrevious || !current) rmSync(previous, { force: true });
  else replaceKey(previous, current);
  replaceKey(join(dataDir, ACK_KEY_FILE), randomBytes(KEY_BYTES));
  return { keptPrevious: !o.dropPrevious && current !== undefined };
}

/** Removes ack.key.previous (it leaked): the links it signed stop working (crs serve: within ACK_KEY_FILES_CHECK_MS). */
export function dropPreviousAckKey(dataDir: string): boolean {
  const file = join(dataDir, ACK_PREVIOUS_KEY_FILE);
  if (!existsSync(file)) return false;
  rmSync(file);
  return true;
}
