// The embedded server's security log: what was refused at the door and is about no patient anyone can vouch for
// (forged or malformed acknowledge links, unknown device tokens), one JSON line each, in the data directory
// (owner-only), never in a patient's audit trail. Appended without fsync (it is evidence, not a promise to anyone),
// and bounded: past maxBytes the file is rotated to security.log.1 (the one before is dropped). The host
// rate-limits what reaches it per client address.
import { appendFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { SecurityEvent, SecurityLog } from '#ports';

const SECURITY_LOG_FILE = 'security.log';

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
