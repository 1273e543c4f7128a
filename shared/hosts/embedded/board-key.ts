// The board access key: generated once per data directory, kept there (owner-only), printed in the board URL.
// The board's API and every acknowledgement require it; the browser keeps it in an HttpOnly, SameSite cookie.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const BOARD_KEY_FILE = 'board.key';

export function loadOrCreateBoardKey(dataDir: string): string {
  const file = join(dataDir, BOARD_KEY_FILE);
  if (existsSync(file)) {
    const key = readFileSync(file, 'utf8').trim();
    if (key.length >= 32) return key;
  }
  const key = randomBytes(24).toString('base64url');
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
/**
 * The cookie the browser keeps the key in, named after the key (a digest of it: the name says nothing of the key):
 * cookies ignore ports, so two servers on one machine under one name logged each other's board out. One name per
 * data directory, the same across restarts, a new port and a restore from a backup (which keeps board.key).
 */
export const boardCookieName = (key: string): string =>
  `crs_board_${digest(`crs-board-cookie:${key}`).toString('hex').slice(0, 16)}`;

/** Constant-time comparison (of digests, so the lengths always match). */
export function keyMatches(expected: string, given: string | undefined): boolean {
  return given !== undefined && timingSafeEqual(digest(expected), digest(given));
}
