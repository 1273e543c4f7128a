// The vignettes as a hospital sends them (vitals as HL7 v2 PCD-01, charting as FHIR R4) to the real `crs serve`,
// HL7 over MLLP and over HTTP: the same pages, field for field (message ids aside), as `crs replay` prints for their JSON.
// And the site's FHIR drug codes given as `crs serve --fhir-drug-codes FILE` reach the FHIR translation.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
import { readAck } from '#app/hl7v2/ack.ts';
import { MllpClient } from '#hosts/mllp-bridge/mllp-client.ts';
import { asInterfaces, vignettes } from '#test/support/interfaces.ts';
import { CRS_BIN, INGEST_TOKEN, REPO, idle, pageEvents, spawnServe, stop } from './embedded-support.ts';
import { mappedPressors } from '#test/support/drug-codes.ts';

const dir = mkdtempSync(join(tmpdir(), 'crs-interfaces-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A page without the ids that differ by construction (the messages' ids come from MSH-10 and FHIR ids). */
const comparable = (events: { type: string; patientId: string }[]) => {
  const out: Record<string, unknown[]> = {};
  for (const e of events) {
    const { notificationId: _n, causedBy: _c, ...rest } = e as Record<string, unknown>;
    (out[e.patientId] ??= []).push(rest);
  }
  return out;
};

const httpPost = (url: string, path: string, type: string, body: string) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': type },
    body,
  });

describe('vignettes through HL7 v2 and FHIR on crs serve', () => {
  for (const scheme of ['astct2019', 'lee2014'] as const) {
    for (const hl7 of ['mllp', 'http'] as const) {
      it(`page as their JSON does (${scheme}, HL7 over ${hl7})`, async () => {
        const set = vignettes.filter((v) => v.scheme === scheme);
        const file = join(dir, `${scheme}.ndjson`);
        writeFileSync(
          file,
          set
            .flatMap((v) => v.messages)
            .map((m) => JSON.stringify(m))
            .join('\n') + '\n',
        );
        const replayed = pageEvents(
          execFileSync(process.execPath, [CRS_BIN, 'replay', file, '--scheme', scheme], {
            cwd: REPO,
            encoding: 'utf8',
          }).split('\n'),
        ).filter((e) => e.type === 'notification');

        const server = await spawnServe(join(dir, `${scheme}-${hl7}`), ['--scheme', scheme, '--mllp-port', '0']);
        const mllpPort = Number(server.stderr().match(/MLLP on [\d.]+:(\d+)/)?.[1]); // printed before the board's line
        const client = new MllpClient('127.0.0.1', mllpPort);
        try {
          for (const v of set) {
            for (const item of asInterfaces(v)) {
              if (item.format === 'fhir') {
                const res = await httpPost(
                  server.url,
                  '/fhir/r4/Bundle',
                  'application/fhir+json',
                  JSON.stringify(item.bundle),
                );
                // A transaction taken: 200 and a transaction-response, each entry 202 (until 2026-12-05: 202 and an
                // OperationOutcome, which a FHIR client's transaction() could not read).
                const answer = (await res.json()) as Bundle;
                expect([res.status, answer.type, answer.entry?.map((e) => e.response?.status)]).toEqual([
                  200,
                  'transaction-response',
                  item.bundle.entry!.map(() => '202 Accepted'),
                ]);
              } else if (hl7 === 'mllp') {
                expect(readAck(await client.send(item.text))?.code).toBe('AA');
              } else {
                const res = await httpPost(server.url, '/v1/hl7v2', 'x-application/hl7-v2+er7', item.text);
                expect(res.status).toBe(202);
                expect(res.headers.get('content-type')).toMatch(/^x-application\/hl7-v2\+er7/);
                expect(readAck(await res.text())?.code).toBe('AA');
              }
            }
          }
          await idle(server);
        } finally {
          client.close();
          expect(await stop(server)).toBe(0);
        }
        const served = pageEvents(server.lines).filter((e) => e.type === 'notification');
        expect(served.length).toBe(replayed.length);
        expect(comparable(served)).toEqual(comparable(replayed));
      });
    }
  }
});

describe('crs serve --fhir-drug-codes FILE (2026-12-07)', () => {
  // A mutation run (2026-12-07) found nothing checked that crs serve passes the map on to the FHIR translation:
  // dropped in shared/cli/serve.ts or in the embedded host, every test stayed green (the mapped pump answered 422).
  it('grades a pump of a locally coded drug the map names as that vasopressor (two pressors: CRS 4)', async () => {
    const { map, bundle } = mappedPressors(Date.now() - 60_000);
    const mapFile = join(dir, 'drug-codes.json');
    writeFileSync(mapFile, JSON.stringify(map));
    const server = await spawnServe(join(dir, 'drug-codes'), ['--fhir-drug-codes', mapFile]);
    try {
      const res = await httpPost(
        server.url,
        '/fhir/r4/Bundle',
        'application/fhir+json',
        JSON.stringify(bundle('P-MAP')),
      );
      const answer = (await res.json()) as Bundle;
      expect([res.status, answer.type], JSON.stringify(answer)).toEqual([200, 'transaction-response']);
      // The same Bundle with a local code the map does not hold: the name check refuses it, the map is read by code.
      const unmapped = await httpPost(
        server.url,
        '/fhir/r4/Bundle',
        'application/fhir+json',
        JSON.stringify(bundle('P-UNMAPPED', 'NE-DRIP-2')),
      );
      expect(unmapped.status).toBe(422);
      expect(((await unmapped.json()) as OperationOutcome).issue?.[0]?.diagnostics).toMatch(/names norepinephrine/);
      await idle(server);
    } finally {
      expect(await stop(server)).toBe(0);
    }
    const pages = pageEvents(server.lines).filter((e) => e.type === 'notification') as unknown as {
      patientId: string;
      toGrade: number;
      reasons: string[];
    }[];
    expect(pages.map((p) => p.patientId)).not.toContain('P-UNMAPPED');
    const last = pages.filter((p) => p.patientId === 'P-MAP').at(-1)!;
    expect(last.toGrade).toBe(4);
    expect(last.reasons.filter((r) => /infusing/.test(r)).map((r) => r.split(' ')[0])).toEqual([
      'norepinephrine',
      'epinephrine',
    ]);
  });
});
