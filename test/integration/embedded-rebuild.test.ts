// `crs serve` keeps answering HL7 v2 and FHIR after the build it runs from is replaced under it. bin/crs.js rebuilds
// dist/cli when a source changed (after a `git pull`, any `crs` command: `crs token issue` while the server runs, as
// docs/embedded.md says it may be) and removes the build it replaces; the server loaded its HL7 v2 and FHIR routes
// only at their first request, from chunks that were gone by then: each such request was answered 500 "internal
// error" (and its 503 fallback failed the same way) until the server was restarted, while JSON went on working.
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO } from '#test/support/cli.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** `crs serve` run from its own copy of the build (inside the repo, so that node_modules resolve). */
async function serveFromCopy(): Promise<{ url: string; token: string; build: string; child: ChildProcess }> {
  const build = join(REPO, 'dist', `cli-replaced-${process.pid}`);
  cpSync(join(REPO, 'dist', 'cli'), build, { recursive: true });
  const data = mkdtempSync(join(tmpdir(), 'crs-rebuild-'));
  const token = 'rebuild-test-token-0123456789abcdef';
  const main = JSON.stringify(pathToFileURL(join(build, 'main.js')).href);
  const argv = JSON.stringify(['serve', '--port', '0', '--data', data]);
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { main } = await import(${main}); process.exitCode = await main(${argv}, {});`,
    ],
    { cwd: REPO, env: { ...process.env, CRS_INGEST_TOKEN: token }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  cleanups.push(() => {
    child.kill('SIGKILL');
    rmSync(data, { recursive: true, force: true });
    rmSync(build, { recursive: true, force: true });
  });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`crs serve did not start:\n${err}`)), 20_000);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      err += chunk;
      const m = err.match(/listening on (http:\/\/\S+)/);
      if (m && err.includes('on-call board')) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`crs serve exited with ${code}:\n${err}`)));
  });
  return { url, token, build, child };
}

describe('crs serve after its build is replaced', () => {
  it('answers HL7 v2 and FHIR as before the rebuild (202), never 500', async () => {
    const { url, token, build } = await serveFromCopy();
    rmSync(build, { recursive: true, force: true }); // as bin/build-cli.js does with the build it replaces

    const now = new Date();
    const dtm = `${now.toISOString().slice(0, 19).replace(/[-:T]/g, '')}+0000`;
    const hl7 = [
      `MSH|^~\\&|GW1|FAC1|CRS|HOSP|${dtm}||ORU^R01|rebuild-1|P|2.6`,
      'PID|||P-R1^^^^MR',
      `OBR|1||||||${dtm}`,
      'OBX|1|NM|150344^MDC_TEMP^MDC||37.1|268192^MDC_DIM_DEGC^MDC|||||R',
    ].join('\r');
    const h = await fetch(`${url}/v1/hl7v2`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/hl7-v2' },
      body: `${hl7}\r`,
    });
    const ack = await h.text();
    expect([h.status, ack]).toEqual([202, expect.stringContaining('MSA|AA|rebuild-1|')]);

    const f = await fetch(`${url}/fhir/r4/Observation`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({
        resourceType: 'Observation',
        id: 'rebuild-2',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
        subject: { reference: 'Patient/P-R1' },
        effectiveDateTime: now.toISOString(),
        valueQuantity: { value: 80, system: 'http://unitsofmeasure.org', code: '/min' },
      }),
    });
    expect(f.status).toBe(202);
  });
});
