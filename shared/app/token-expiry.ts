// Which device tokens are about to refuse their device, or already do: one rule for `crs token list` (either backend)
// and `crs doctor --backend aws` (2026-12-06), so that both name the same tokens.
import { inline, quoted } from '#domain/printable.ts';
import type { DeviceToken } from '#ports';
import {
  expiryMs,
  expiryUnreadable as expiryUnreadableOf,
  replacementAmong,
  tokenExpired,
  tokenPrincipal,
} from './auth.ts';

/** An active token expiring within this many days is warned of. */
export const EXPIRY_WARNING_DAYS = 14;

/** A token not revoked that has expired, or expires within EXPIRY_WARNING_DAYS: by id and device, never the token. */
export interface ExpiryFinding {
  tokenId: string;
  deviceId: string;
  expiresAt: string;
  /** Expired: its device is refused (unless a newer token of it is taken, in which case there is no finding). */
  expired: boolean;
  /**
   * Its expiresAt cannot be read (a hand edit; 2026-12-06): its device is refused too, but it is not expired at a
   * time (expired is false), as `crs token list --json` has it (until 2026-12-06 doctor's JSON said both).
   */
  expiryUnreadable: boolean;
  /**
   * Its replacement, taken now: the one to configure the device with. The one `crs token rotate` linked to it
   * (2026-12-07); for a token with no link, a newer token of its device that outlives it (a rotation's, guessed).
   */
  replacedBy: string | null;
}

/**
 * Each token not revoked that has expired at `now`, or expires within EXPIRY_WARNING_DAYS. A token replaced (the one
 * `crs token rotate` linked to it, taken now; with no link, a token of its device issued with or after it, taken now,
 * that outlives it: a rotation's before 2026-12-07) is not to be rotated again: until its end the finding names the
 * new one; once it has expired, nothing (until 2026-12-06 every rotated token was warned of as refusing its device,
 * forever, with `crs token rotate` to run, which would make yet another token).
 */
export function expiryFindings(tokens: readonly DeviceToken[], now: Date): ExpiryFinding[] {
  const soon = new Date(now.getTime() + EXPIRY_WARNING_DAYS * 86_400_000);
  // Taken now: not revoked, not expired, nothing stored with it that the server refuses.
  const taken = (t: DeviceToken) => !t.revokedAt && tokenPrincipal(t, now).ok;
  const replacement = (r: DeviceToken): DeviceToken | undefined => {
    // The link `crs token rotate` stores on the old token (replacedBy, 2026-12-07) names the replacement: followed
    // to the first one taken now (a replacement rotated in turn names its own), none when the chain ends in a token
    // revoked, expired or gone (the device is then refused: warned of as one never replaced, never a guess). The
    // refusal of the token follows the same chain (replacementAmong, replacementOf: one rule).
    if (r.replacedBy !== undefined) {
      const by = replacementAmong(tokens, r, now);
      return typeof by === 'object' ? tokens.find((t) => t.tokenId === by.tokenId) : undefined;
    }
    // No link: a token rotated before 2026-12-07 (the link did not exist), or never rotated. Guessed as it was then:
    // a token of its device issued with or after it, taken now, that outlives it. The guess can name another token
    // of the device issued beside it, or miss a successor given a shorter --expires; the link does neither.
    return tokens.find(
      (n) =>
        n.tokenId !== r.tokenId &&
        n.deviceId === r.deviceId &&
        n.createdAt >= r.createdAt &&
        taken(n) &&
        !(expiryMs(n) <= expiryMs(r)),
    );
  };
  return tokens
    .filter((r) => !r.revokedAt && tokenExpired(r, soon))
    .flatMap((r) => {
      const expiryUnreadable = expiryUnreadableOf(r);
      const expired = !expiryUnreadable && tokenExpired(r, now);
      const by = replacement(r);
      if (by && (expired || expiryUnreadable)) return [];
      return [
        {
          tokenId: r.tokenId,
          deviceId: r.deviceId,
          expiresAt: r.expiresAt!,
          expired,
          expiryUnreadable,
          replacedBy: by?.tokenId ?? null,
        },
      ];
    });
}

/** Its device is refused now: the token expired, or its expiry cannot be read (a problem to `crs doctor`). */
export const refuses = (f: ExpiryFinding): boolean => f.expired || f.expiryUnreadable;

/**
 * A finding as a sentence, with what to do before (or since) its device is refused; `where` the backend options
 * `crs token rotate` needs to find the token (' --backend aws --table NAME'; none for the embedded default).
 * What the store holds is escaped: a hand-edited item can hold anything.
 */
export function expiryFindingText(f: ExpiryFinding, where = ''): string {
  // An unreadable expiry gives its successor no life to copy: the rotation needs --expires.
  const rotate = `crs token rotate ${inline(f.tokenId)}${f.expiryUnreadable ? ' --expires WHEN' : ''}${where}`;
  const what = f.replacedBy
    ? `replaced by ${inline(f.replacedBy)}; configure the device with that before then`
    : `${refuses(f) ? 'the device is refused; ' : ''}rotate it (${rotate}) and configure the device with the new token`;
  const when = f.expiryUnreadable
    ? `has an expiry that cannot be read (${quoted(f.expiresAt)}; an ISO 8601 instant with its zone is needed)`
    : `${f.expired ? 'expired' : 'expires'} at ${inline(f.expiresAt)}`;
  return `token ${inline(f.tokenId)} of device ${inline(f.deviceId)} ${when}: ${what}`;
}
