// A body over the limit, sent whole by a client that does not wait for the answer before writing (fetch, most HTTP
// clients), gets its 413 every time from `crs serve` as its own process: the server reads and drops the rest before
// it closes (lingerThenClose in shared/hosts/embedded/http.ts). It closed at once, and a socket closed with data
// unread resets the connection: 20 of 30 such POSTs failed with EPIPE ("fetch failed") instead of the 413, and a
// gateway would take its message for a network fault and send it again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_TOKEN, spawnServe, stop, type ServeProcess } from './embedded-support.ts';

const dir = mkdtempSync(join(tmpdir(), 'crs-oversized-'));
let server: ServeProcess;
beforeAll(async () => {
  server = await spawnServe(dir);
});
afterAll(async () => {
  if (server) await stop(server);
  rmSync(dir, { recursive: true, force: true });
});

describe('crs serve and a body over the limit', () => {
  it('answers 413 every time, never a reset, for a message and a batch', async () => {
    const outcomes: (number | string)[] = [];
    for (let i = 0; i < 30; i++) {
      const path = i % 2 === 0 ? '/v1/messages' : '/v1/messages/batch';
      const res = await fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json' },
        body: 'x'.repeat(4 * 1024 * 1024),
      }).then(
        async (r) => {
          await r.text();
          return r.status;
        },
        (err: Error) => String(err.cause ?? err),
      );
      outcomes.push(res);
    }
    expect(outcomes).toEqual(Array(30).fill(413));
  });
});
