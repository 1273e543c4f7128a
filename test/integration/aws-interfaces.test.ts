// The deployed shape on an AWS emulator (moto): the vignettes as a hospital sends them, vitals as HL7 v2 to
// POST /v1/hl7v2 and charting as FHIR R4 to POST /fhir/r4/Bundle, through the real API routes of the stack and the
// real ingest handler, page as `crs replay` prints for their JSON; sent again, nothing pages twice. The server is
// given the site's drug codes (`--fhir-drug-codes FILE`, shipped to the ingest function as the stack's
// `-c fhirDrugCodes` ships them): a pump of a local code the map names is graded as that vasopressor.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
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
  until,
} from '#test/support/aws-serve.ts';
import { mappedPressors } from '#test/support/drug-codes.ts';
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
  // One server for both (a server start is most of this file's time): the map holds no code the vignettes use.
  it('page as the JSON does (astct2019), once; a pump coded locally is graded as the drug the site maps it to', async () => {
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
    const { map, bundle } = mappedPressors(Date.now() - 60_000);
    const mapFile = join(dir, 'drug-codes.json');
    writeFileSync(mapFile, JSON.stringify(map));
    const server = await spawnAwsServe(emulator.endpoint, prefix, [
      '--scheme',
      'astct2019',
      '--fhir-drug-codes',
      mapFile,
    ]);
    const postTo = (path: string, type: string, body: string) =>
      fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': type },
        body,
      });
    const fhir = (b: Bundle) => postTo('/fhir/r4/Bundle', 'application/fhir+json', JSON.stringify(b));
    const send = async (item: (typeof items)[number]) => {
      const hl7 = item.format === 'hl7v2';
      const res = hl7 ? await postTo('/v1/hl7v2', 'x-application/hl7-v2+er7', item.text) : await fhir(item.bundle);
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

      // The site's drug codes reach the ingest function's FHIR translation (until 2026-12-07 no test ran them on
      // this shape): norepinephrine by a local code the map names, beside epinephrine, is two pressors, CRS 4.
      const mapped = await fhir(bundle('P-MAP'));
      const answer = (await mapped.json()) as Bundle;
      expect([mapped.status, answer.type], JSON.stringify(answer)).toEqual([200, 'transaction-response']);
      // A local code the map does not hold is refused by the name check: the map is read by its code.
      const unmapped = await fhir(bundle('P-UNMAPPED', 'NE-DRIP-2'));
      expect(unmapped.status).toBe(422);
      expect(((await unmapped.json()) as OperationOutcome).issue?.[0]?.diagnostics).toMatch(/names norepinephrine/);
      const graded = await until(server, 'P-MAP graded CRS 4', () =>
        pageLines(server.lines).find((e) => e.patientId === 'P-MAP' && e.toGrade === 4),
      );
      expect(
        (graded as unknown as { reasons: string[] }).reasons
          .filter((r) => /infusing/.test(r))
          .map((r) => r.split(' ')[0]),
      ).toEqual(['norepinephrine', 'epinephrine']);
    } finally {
      expect(await stop(server)).toBe(0);
      await teardown(emulator.endpoint, prefix);
    }
    const served = pageLines(server.lines).filter((e) => e.type === 'notification');
    expect(served.map((e) => e.patientId)).not.toContain('P-UNMAPPED');
    expect(comparable(served.filter((e) => e.patientId !== 'P-MAP'))).toEqual(comparable(replayed));
  }, 240_000);
});
