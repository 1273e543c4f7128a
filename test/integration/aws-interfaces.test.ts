// The deployed shape on an AWS emulator (moto): the vignettes as a hospital sends them, vitals as HL7 v2 to
// POST /v1/hl7v2 and charting as FHIR R4 to POST /fhir/r4/Bundle, through the real API routes of the stack and the
// real ingest handler, page as `crs replay` prints for their JSON; sent again, nothing pages twice.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle } from '@medplum/fhirtypes';
import { readAck } from '#app/hl7v2/ack.ts';
import {
  CRS_BIN,
  INGEST_TOKEN,
  REPO,
  pageLines,
  runPrefix,
  settle,
  spawnAwsServe,
  stop,
  teardown,
} from '#test/support/aws-serve.ts';
import { asInterfaces, vignettes } from '#test/support/interfaces.ts';
import { startEmulator, type Emulator } from '#test/support/moto.ts';

const dir = mkdtempSync(join(tmpdir(), 'crs-aws-interfaces-'));
let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const comparable = (events: { patientId: string }[]) => {
  const out: Record<string, unknown[]> = {};
  for (const e of events) {
    const { notificationId: _n, causedBy: _c, ...rest } = e as unknown as Record<string, unknown>;
    (out[e.patientId] ??= []).push(rest);
  }
  return out;
};

describe('HL7 v2 and FHIR through the deployed shape on an emulator', () => {
  it('page as the JSON does (astct2019), once', async () => {
    const set = vignettes.filter((v) => v.scheme === 'astct2019');
    const file = join(dir, 'astct.ndjson');
    writeFileSync(
      file,
      set
        .flatMap((v) => v.messages)
        .map((m) => JSON.stringify(m))
        .join('\n') + '\n',
    );
    const replayed = pageLines(
      execFileSync(process.execPath, [CRS_BIN, 'replay', file, '--scheme', 'astct2019'], {
        cwd: REPO,
        encoding: 'utf8',
      }).split('\n'),
    ).filter((e) => e.type === 'notification');
    const items = set.flatMap(asInterfaces);
    const prefix = runPrefix('ifc');
    const server = await spawnAwsServe(emulator.endpoint, prefix, ['--scheme', 'astct2019']);
    const send = async (item: (typeof items)[number]) => {
      const hl7 = item.format === 'hl7v2';
      const res = await fetch(`${server.url}${hl7 ? '/v1/hl7v2' : '/fhir/r4/Bundle'}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${INGEST_TOKEN}`,
          'content-type': hl7 ? 'x-application/hl7-v2+er7' : 'application/fhir+json',
        },
        body: hl7 ? item.text : JSON.stringify(item.bundle),
      });
      const body = await res.text();
      // A FHIR transaction taken: 200 and a transaction-response, each entry 202 (until 2026-12-05: 202 and an
      // OperationOutcome, as crs serve answered too).
      expect(res.status, body).toBe(hl7 ? 202 : 200);
      if (hl7) expect(readAck(body)?.code).toBe('AA');
      else {
        const answer = JSON.parse(body) as Bundle;
        expect([answer.type, answer.entry?.map((e) => e.response?.status)], body).toEqual([
          'transaction-response',
          item.bundle.entry!.map(() => '202 Accepted'),
        ]);
      }
    };
    try {
      // The route the stack gives FHIR clients to read what the endpoint takes, before they send.
      const metadata = await fetch(`${server.url}/fhir/r4/metadata`);
      expect(metadata.status).toBe(200);
      expect(await metadata.json()).toMatchObject({ resourceType: 'CapabilityStatement', fhirVersion: '4.0.1' });
      for (const item of items) await send(item);
      const first = await settle(server, replayed.length);
      expect(first.pages.printed).toBe(replayed.length);
      for (const item of items) await send(item); // resent after a lost answer: the same ids, no page
      const again = await settle(server, replayed.length);
      expect(again.pages.printed).toBe(replayed.length);
      expect(again.deadLetters).toBe(0);
    } finally {
      expect(await stop(server)).toBe(0);
      await teardown(emulator.endpoint, prefix);
    }
    const served = pageLines(server.lines).filter((e) => e.type === 'notification');
    expect(comparable(served)).toEqual(comparable(replayed));
  }, 240_000);
});
