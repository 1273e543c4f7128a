// The examples the docs give a sender, sent as printed (walked 2026-12-07): docs/interfaces.md's first messages over
// FHIR (a resource, a Bundle) through the device routes, answered as the comment under each says, and
// docs/contract.md's message, valid once the edits the text asks for are made. A doc example that the code refuses
// or answers otherwise fails here, naming the doc.
import { readFileSync } from 'node:fs';
import { beforeEach, describe, expect, it } from 'vitest';
import { handleDeviceRequest } from '#app/interfaces/http.ts';
import { validateMessage } from '#domain/contract.ts';
import { type MemoryQueue, type MemoryTokenStore, ingestFakes, queueDirectory } from '#test/support/port-fakes.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const doc = (file: string) => readFileSync(`${ROOT}${file}`, 'utf8');
const NOW = Date.parse('2026-12-07T09:00:00Z');
const STAMP = '2026-12-07T08:59:00Z';

let queue: MemoryQueue;
let tokens: MemoryTokenStore;
let token: string;
beforeEach(async () => {
  ({ queue, tokens, token } = await ingestFakes(NOW));
});

/** The "A first message of each" block of docs/interfaces.md. */
const firstMessages = () => {
  const text = doc('docs/interfaces.md');
  const start = text.indexOf('## A first message of each');
  const block = /```bash\n([\s\S]*?)\n```/.exec(text.slice(start))?.[1];
  if (start < 0 || !block) throw new Error('docs/interfaces.md: no "A first message of each" bash block');
  return block;
};

/** The answer documented under a curl: its `#   ` comment lines, joined, and the status in parentheses. */
const documented = (after: string) => {
  const lines = after.split('\n').filter((l) => l.startsWith('#   ') || l.startsWith('#    '));
  const text = lines.map((l) => l.slice(1).trim()).join('');
  const m = /^(.*) \((\d{3})\)$/.exec(text);
  if (!m) throw new Error(`no documented answer in: ${after.slice(0, 200)}`);
  return { body: m[1]!, status: Number(m[2]) };
};

const send = (path: string, contentType: string, body: string) =>
  handleDeviceRequest(
    { method: 'POST', path, headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body },
    { queue, tokens, now: () => NOW, patients: queueDirectory(queue) },
  );

describe('docs/interfaces.md: the first messages, sent as printed', () => {
  it('the FHIR R4 Bundle (batch): every entry taken, answered as the doc shows', async () => {
    const block = firstMessages();
    const heredoc = /cat > bundle\.json <<EOF\n([\s\S]*?)\nEOF\n/.exec(block);
    expect(heredoc, 'a Bundle written with cat > bundle.json <<EOF').not.toBeNull();
    const rest = block.slice(heredoc!.index + heredoc![0].length);
    const curl = /curl -s http:\/\/127\.0\.0\.1:8080(\S+) [\s\S]*?content-type: ([^']+)'/.exec(rest);
    expect(curl?.[1]).toBe('/fhir/r4/Bundle');
    const res = await send(curl![1]!, curl![2]!, heredoc![1]!.replaceAll('$NOW', STAMP));
    const want = documented(rest.slice(curl!.index + curl![0].length).split('\n```')[0]!);
    expect(res.status).toBe(want.status);
    expect(JSON.parse(res.body)).toEqual(JSON.parse(want.body));
    expect(queue.messages.map((q) => q.message.vitals)).toEqual([{ temperatureC: 38.9, heartRate: 118 }]);
  });

  it('the FHIR Observation: taken, 202 with the diagnostics the doc shows', async () => {
    const block = firstMessages();
    const m =
      /curl -s http:\/\/127\.0\.0\.1:8080(\/fhir\/r4\/Observation) [\s\S]*?content-type: ([^']+)' -d '([\s\S]*?)'\n/.exec(
        block,
      );
    expect(m, 'a curl to /fhir/r4/Observation with -d').not.toBeNull();
    const body = m![3]!.replace(`'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"'`, STAMP);
    const res = await send(m![1]!, m![2]!, body);
    const want = documented(block.slice(m!.index + m![0].length).split('\n\n')[0]!);
    expect(res.status).toBe(want.status);
    const diagnostics = /"diagnostics":"([^"]*)"/.exec(want.body)?.[1];
    expect(JSON.parse(res.body).issue[0].diagnostics).toBe(diagnostics);
  });
});

describe('docs/contract.md: the message', () => {
  const example = () => {
    const jsonc = /```jsonc\n([\s\S]*?)\n```/.exec(doc('docs/contract.md'))?.[1];
    if (!jsonc) throw new Error('docs/contract.md: no jsonc block');
    return JSON.parse(jsonc.replace(/\s*\/\/.*$/gm, '')) as Record<string, unknown>;
  };

  it('is valid with the comments dropped, monitoringEnd too or not', () => {
    const { monitoringEnd, ...toSend } = example();
    expect(monitoringEnd).toEqual({ reason: 'discharged' });
    expect(validateMessage(toSend)).toMatchObject({ ok: true });
    expect(validateMessage({ ...toSend, monitoringEnd })).toMatchObject({ ok: true });
  });

  it('is taken by POST /v1/messages once observedAt is now, as the doc says', async () => {
    const { monitoringEnd: _, ...toSend } = example();
    const res = await send('/v1/messages', 'application/json', JSON.stringify({ ...toSend, observedAt: STAMP }));
    expect([res.status, JSON.parse(res.body)]).toEqual([202, { accepted: 1, messageIds: ['gw-icu4-000123'] }]);
  });
});
