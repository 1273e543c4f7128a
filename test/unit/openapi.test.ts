// The OpenAPI document of the device-facing HTTP API (shared/app/openapi.ts): published as generated, valid OpenAPI
// 3.1, the contract's own schema, its examples real fixtures.
import { readFileSync } from 'node:fs';
import { compileErrors, validate } from '@readme/openapi-parser';
import { describe, expect, it } from 'vitest';
import { ROUTES } from '#app/ingest.ts';
import { openApiDocument } from '#app/openapi.ts';
import { deviceMessageJsonSchema, validateMessage, type DeviceMessage } from '#domain/contract.ts';
import { crsAsync } from '#test/support/cli.ts';

// A JSON document, read by path.
type Json = any;
const doc: Json = openApiDocument();
const published = JSON.parse(readFileSync(new URL('../../shared/contract/openapi.v1.json', import.meta.url), 'utf8'));
const fixture = readFileSync(new URL('../fixtures/sample-timeline.ndjson', import.meta.url), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as DeviceMessage);

/** Every operation: "POST /v1/messages" -> the operation. */
const operations = (d: Json): Record<string, Json> =>
  Object.fromEntries(
    Object.entries(d.paths as Json).flatMap(([path, item]) =>
      Object.entries(item as Json).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op]),
    ),
  );
const example = (op: string, type = 'application/json') => operations(doc)[op].requestBody.content[type].example;

describe('the published document', () => {
  it('is the one generated from the code (run `npm run schema` after changing a route, a status or the contract)', () => {
    expect(published).toEqual(doc);
  });

  it('is valid OpenAPI 3.1, without warnings (and the validator refuses a broken one)', async () => {
    const r = await validate(structuredClone(doc));
    expect(r.valid ? [] : compileErrors(r)).toEqual([]);
    expect(r).toMatchObject({ valid: true, warnings: [], specification: 'OpenAPI' });
    expect(doc.openapi).toMatch(/^3\.1\./);
    const broken = structuredClone(doc) as Json;
    delete broken.paths[ROUTES.single].post.responses['202'].description;
    expect((await validate(broken)).valid).toBe(false);
  });

  it("holds the contract's own JSON Schema once, and every device message body refers to it", () => {
    expect(doc.components.schemas.DeviceMessage).toEqual(deviceMessageJsonSchema());
    const ref = { $ref: '#/components/schemas/DeviceMessage' };
    const ops = operations(doc);
    expect(ops[`POST ${ROUTES.single}`].requestBody.content['application/json'].schema).toEqual(ref);
    expect(ops[`POST ${ROUTES.batch}`].requestBody.content['application/json'].schema.items).toEqual(ref);
    // Written nowhere else: the schema's own keys appear once in the document.
    expect(JSON.stringify(doc).split('"organToxicity"').length - 1).toBe(1);
  });

  it('gives as example requests lines of test/fixtures/sample-timeline.ndjson, which the contract accepts', () => {
    const single = example(`POST ${ROUTES.single}`);
    const batch = example(`POST ${ROUTES.batch}`) as DeviceMessage[];
    for (const m of [single, ...batch]) {
      expect(fixture).toContainEqual(m);
      expect(validateMessage(m)).toEqual({ ok: true, message: m });
    }
  });

  it('is what `crs schema --openapi` prints', async () => {
    const r = await crsAsync(['schema', '--openapi'], {});
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(doc);
  });
});
