// The embedded server's security log: what was refused at the door and is about no patient anyone can vouch for
// (forged or malformed acknowledge links, unknown device tokens), one JSON line each, in the data directory
// (owner-only), never in a patient's audit trail. Appended without fsync (it is evidence, not a promise to anyone),
// and bounded: past maxBytes the file is rotated to security.log.1 (the one before is dropped). The host
// rate-limits what reaches it per client address, and counts what the limit kept out (CountingSecurityLog).
import { appendFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { iso } from '#domain/time.ts';
import type { SecurityEvent, SecurityLog, SecurityRefusal } from '#ports';
import type { RateLimiter } from './limits.ts';

export const SECURITY_LOG_FILE = 'security.log';

export class FileSecurityLog implements SecurityLog {
  readonly file: string;
  private size: number;

  constructor(
    dataDir: string,
    private readonly maxBytes = 4 * 1024 * 1024,
  ) {
    this.file = join(dataDir, SECURITY_LOG_FILE);
    try {
      this.size = statSync(this.file).size;
    } catch {
      this.size = 0;
    }
  }

  async record(event: SecurityEvent): Promise<void> {
    const line = `${JSON.stringify(event)}\n`;
    if (this.size + line.length > this.maxBytes && this.size > 0) {
      renameSync(this.file, `${this.file}.1`);
      this.size = 0;
    }
    appendFileSync(this.file, line, { mode: 0o600 });
    this.size += Buffer.byteLength(line);
  }
}

interface Pending {
  client: string;
  kind: SecurityRefusal;
  count: number;
  first: number;
  last: number;
}

/**
 * The security log with what the per-address budget kept out of it: a refusal not written (its address's budget is
 * spent) is counted per address and kind, and the count written as one `suppressed` line before that address's next
 * line of that kind, at each flush (the host's timer, at least once a minute) and at shutdown: every refusal is a
 * line or counted in one. Bounded as the budgets are: past maxKeys pending counts, the one counted least recently is
 * written at once, never dropped. One line per address and kind per flush at most.
 */
export class CountingSecurityLog implements SecurityLog {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly log: SecurityLog,
    private readonly now: () => number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Writes the event, after the count of its kind from its client not written before it (if any). */
  async record(event: SecurityEvent): Promise<void> {
    if (event.event !== 'suppressed' && event.client !== undefined) await this.write(keyOf(event.event, event.client));
    await this.log.record(event);
  }

  /** One refusal not written: counted until its count is. */
  async notWritten(kind: SecurityRefusal, client: string): Promise<void> {
    const key = keyOf(kind, client);
    const now = this.now();
    const p = this.pending.get(key) ?? { client, kind, count: 0, first: now, last: now };
    p.count++;
    p.last = now;
    this.pending.delete(key);
    this.pending.set(key, p); // most recent last
    if (this.pending.size > this.maxKeys) await this.write(this.pending.keys().next().value!);
  }

  /** Writes every pending count, one line each. */
  async flush(): Promise<void> {
    for (const key of [...this.pending.keys()]) await this.write(key);
  }

  private async write(key: string): Promise<void> {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    try {
      await this.log.record({
        at: iso(this.now()),
        event: 'suppressed',
        reason: `${p.kind} past the address's budget, not written`,
        client: p.client,
        claimed: {},
        suppressed: { kind: p.kind, count: p.count, firstAt: iso(p.first), lastAt: iso(p.last) },
      });
    } catch (err) {
      // Not written: counted still (with whatever came meanwhile), for the next try.
      const q = this.pending.get(key);
      if (q) {
        q.count += p.count;
        q.first = p.first;
      } else this.pending.set(key, p);
      throw err;
    }
  }
}

const keyOf = (kind: SecurityRefusal, client: string) => `${kind} ${client}`;

/**
 * A refused device token, as `crs serve` records it (its HTTP routes and its MLLP listener alike): a line within the
 * client's budget, else counted. The reason and ids only, never the token or what the request carried.
 */
export async function recordTokenRefusal(
  security: Pick<CountingSecurityLog, 'record' | 'notWritten'>,
  budget: RateLimiter,
  refusal: Omit<SecurityEvent, 'event' | 'client' | 'suppressed'> & { client: string },
): Promise<void> {
  if (!budget.take(refusal.client)) return security.notWritten('device-token-refused', refusal.client);
  await security.record({ ...refusal, event: 'device-token-refused' });
}
