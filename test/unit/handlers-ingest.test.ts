// The ingest Lambda with in-memory ports: what a device gateway sees (statuses, errors) and what lands on the queue.
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { OperationOutcome } from '@medplum/fhirtypes';
import { issueToken } from '#app/auth.ts';
import { FhirEncoder } from '#app/fhir/encode.ts';
import { ackReason, readAck } from '#app/hl7v2/ack.ts';
import { toPcd01 } from '#app/hl7v2/encode.ts';
import { tokenCommand } from '#cli/tokens.ts';
import { telemetry, type Telemetry } from '#adapters/aws/telemetry.ts';
import { captureOutput, httpEvent, metricSum, quiet, withoutTimestamps } from '#test/support/lambda-events.ts';
import { enrol, msg } from '#test/support/messages.ts';
import { type MemoryQueue, type MemoryTokenStore, ingestFakes } from '#test/support/port-fakes.ts';
import { messageDigest } from '#app/digest.ts';

type HandlerModule = typeof import('#functions/ingest/handler.ts');
let mod: HandlerModule;
let live: Telemetry;

beforeAll(async () => {
  // The module wires its AWS adapters from the environment at cold start (no network until a call).
  process.env.CRS_QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/Messages.fifo';
  process.env.CRS_TOKENS_TABLE = 'tokens';
  process.env.CRS_STATE_TABLE = 'state';
  process.env.AWS_REGION = 'eu-west-1';
  mod = await import('#functions/ingest/handler.ts');
  live = telemetry('ingest');
});

const NOW = Date.parse('2026-01-10T09:00:00Z');
let queue: MemoryQueue;
let tokens: MemoryTokenStore;
let token: string;
let revokedToken: string;

beforeEach(async () => {
  ({ queue, tokens, token } = await ingestFakes(NOW));
  const old = issueToken('gw-old', new Date(NOW));
  revokedToken = old.token;
  await tokens.put(old.record);
  await tokens.revoke(old.record.tokenId, new Date(NOW).toISOString());
});

function handler() {
  // The same Powertools objects the live handler gets, so the log and metric output is what production writes.
  return quiet(mod.createIngestHandler({ queue, tokens, now: () => NOW, ...live }));
}

const auth = () => ({ authorization: `Bearer ${token}` });

describe('ingest handler', () => {
  it('queues a valid message with its sender and answers 202 only after the queue accepted it', async () => {
    const m = msg('P-1', 0, { vitals: { temperatureC: 38.4 } });
    const res = await handler()(httpEvent({ headers: auth(), body: JSON.stringify(m) }));
    expect(res.statusCode).toBe(202);
    expect(JSON.parse(res.body!)).toEqual({ accepted: 1, messageIds: [m.messageId] });
    expect(queue.messages).toEqual([
      { message: m, digest: messageDigest(m), receivedAt: '2026-01-10T09:00:00Z', sender: 'gw-icu4' },
    ]);
  });

  it('takes a batch route of up to 100 messages, in order', async () => {
    const batch = [
      enrol('P-2'),
      msg('P-2', 1, { vitals: { heartRate: 100 } }),
      msg('P-3', 1, { vitals: { spo2: 95 } }),
    ];
    const res = await handler()(
      httpEvent({ path: '/v1/messages/batch', headers: auth(), body: JSON.stringify(batch) }),
    );
    expect(res.statusCode).toBe(202);
    expect(queue.messages.map((q) => q.message.messageId)).toEqual(batch.map((m) => m.messageId));

    const tooMany = Array.from({ length: 101 }, (_, i) => msg('P-4', i, { vitals: { heartRate: 80 } }));
    const over = await handler()(
      httpEvent({ path: '/v1/messages/batch', headers: auth(), body: JSON.stringify(tooMany) }),
    );
    expect(over.statusCode).toBe(400);
    expect(queue.messages).toHaveLength(3);
  });

  it('decodes a base64 body as API Gateway sends binary-looking payloads', async () => {
    const m = msg('P-5', 0, { vitals: { heartRate: 90 } });
    const res = await handler()(httpEvent({ headers: auth(), body: JSON.stringify(m), base64: true }));
    expect(res.statusCode).toBe(202);
    expect(queue.messages[0]!.message).toEqual(m);
  });

  // 2026-12-07: a token replaced by `crs token rotate` and then revoked (or its overlap over) was told to issue a new
  // one, a third token, the replacement left unused. It names the replacement, in JSON, an HL7 AR and FHIR alike.
  it('tells a device whose token was replaced to install the replacement, on every route, never to issue another', async () => {
    const run = async (...argv: string[]) => {
      let out = '';
      const code = await tokenCommand([...argv, '--backend', 'aws', '--json'], {
        out: (t) => (out += t),
        err: () => undefined,
        now: () => new Date(NOW - 60_000),
        aws: async () => ({ tokens, close: () => undefined }),
        env: { CRS_TOKENS_TABLE: 'tokens' },
      });
      expect(code).toBe(0);
      return JSON.parse(out) as { token: string; tokenId: string };
    };
    const old = await run('issue', '--device', 'gw-9', '--kind', 'monitor');
    const fresh = await run('rotate', old.tokenId, '--overlap', '1m'); // over at NOW: the old one is refused
    const said = `device token replaced at 2026-01-10T08:59:00.000Z by token ${fresh.tokenId} (crs token rotate): install the replacement on the device (if it was lost, rotate that one: crs token rotate ${fresh.tokenId} --backend aws --outputs FILE)`;
    const as = (path: string, contentType: string, body: string, base64 = false) =>
      handler()(
        httpEvent({
          path,
          headers: { authorization: `Bearer ${old.token}`, 'content-type': contentType },
          body,
          base64,
        }),
      );
    const m = msg('P-9', 0, { vitals: { heartRate: 90 } }, 'M-9');
    const json = await as('/v1/messages', 'application/json', JSON.stringify(m));
    expect([json.statusCode, JSON.parse(json.body!).error]).toEqual([403, said]);
    const hl7 = await as('/v1/hl7v2', 'x-application/hl7-v2+er7', toPcd01(m)!, true);
    expect([hl7.statusCode, readAck(hl7.body!)?.code, ackReason(hl7.body!)]).toEqual([403, 'AR', said]);
    const fhir = await as('/fhir/r4/Bundle', 'application/fhir+json', JSON.stringify(new FhirEncoder().bundle(m)));
    const outcome = JSON.parse(fhir.body!) as OperationOutcome;
    expect([fhir.statusCode, outcome.resourceType, outcome.issue?.map((i) => i.diagnostics)]).toEqual([
      403,
      'OperationOutcome',
      [said],
    ]);
    // Revoked once the device changed over: the same words. A token revoked with no replacement keeps its advice.
    await tokens.revoke(old.tokenId, new Date(NOW).toISOString());
    expect(JSON.parse((await as('/v1/messages', 'application/json', JSON.stringify(m))).body!).error).toBe(said);
    expect(queue.messages).toEqual([]);
  });

  it('answers 401 without a bearer token and 403 for an unknown or revoked one, queueing nothing', async () => {
    const body = JSON.stringify(msg('P-6', 0, { vitals: { heartRate: 90 } }));
    const none = await handler()(httpEvent({ body }));
    expect(none.statusCode).toBe(401);
    expect(none.headers?.['www-authenticate']).toMatch(/^Bearer/);
    const unknown = await handler()(httpEvent({ headers: { authorization: 'Bearer crs_not-a-real-token' }, body }));
    expect(unknown.statusCode).toBe(403);
    // What to do, as the operator of this backend runs it: on AWS `crs token` needs --backend aws and the stack's
    // outputs (until 2026-12-06 the embedded command alone, which an AWS operator ran against no data directory).
    expect(JSON.parse(unknown.body!).error).toBe(
      'unknown device token: configure the device with a token this server issued (crs token issue --backend aws --outputs FILE)',
    );
    const revoked = await handler()(httpEvent({ headers: { authorization: `Bearer ${revokedToken}` }, body }));
    expect(revoked.statusCode).toBe(403);
    expect(JSON.parse(revoked.body!).error).toBe(
      'device token revoked: issue the device a new one (crs token issue --backend aws --outputs FILE) and configure it with that',
    );
    const ended = issueToken('gw-ended', new Date(NOW - 1000), {}, new Date(NOW - 1).toISOString());
    await tokens.put(ended.record);
    const expired = await handler()(httpEvent({ headers: { authorization: `Bearer ${ended.token}` }, body }));
    expect(JSON.parse(expired.body!).error).toBe(
      'device token expired at 2026-01-10T08:59:59.999Z: issue the device a new one (crs token rotate TOKEN_ID --backend aws --outputs FILE, or crs token issue --backend aws --outputs FILE) and configure it with that',
    );
    const odd = issueToken('gw-odd', new Date(NOW - 1000), {});
    await tokens.put({ ...odd.record, expiresAt: 'next week' });
    const unreadable = await handler()(httpEvent({ headers: { authorization: `Bearer ${odd.token}` }, body }));
    expect([unreadable.statusCode, JSON.parse(unreadable.body!).error]).toEqual([
      403,
      'device token with an expiry that cannot be read ("next week": an ISO 8601 instant with its zone is needed, such as 2027-03-01T08:00:00Z): issue the device a new one (crs token rotate TOKEN_ID --expires WHEN --backend aws --outputs FILE, or crs token issue --backend aws --outputs FILE) and configure it with that',
    ]);
    // A kind or a scope it cannot read: mended with crs token scope, as this backend's operator runs it (until
    // 2026-12-06 the embedded command alone).
    const said = async (stored: Record<string, unknown>) => {
      const t = issueToken('gw-odd-scope', new Date(NOW - 1000), { kind: 'monitor' });
      await tokens.put({ ...t.record, ...stored } as typeof t.record);
      const res = await handler()(httpEvent({ headers: { authorization: `Bearer ${t.token}` }, body }));
      return [res.statusCode, JSON.parse(res.body!).error];
    };
    const rescope =
      'crs token scope TOKEN_ID --kind K --backend aws --outputs FILE with its --ward W and --patient P (the whole scope)';
    expect(await said({ kind: 'camera' })).toEqual([
      403,
      `device token of an unknown kind "camera": give it a known kind with ${rescope}`,
    ]);
    expect(await said({ wards: 'ICU' })).toEqual([
      403,
      `device token with wards that cannot be read: set them again with ${rescope}`,
    ]);
    expect(await said({ scopeUnreadable: true })).toEqual([
      403,
      'device token with a scope that cannot be read: set it again with crs token scope TOKEN_ID --kind K --backend aws --outputs FILE',
    ]);
    expect(queue.calls).toBe(0);
  });

  it('tells a token of no kind how to get one as the AWS operator runs crs token scope (2026-12-07: the embedded command)', async () => {
    const legacy = issueToken('gw-before-scopes', new Date(NOW - 1000));
    await tokens.put(legacy.record);
    const res = await handler()(
      httpEvent({ headers: { authorization: `Bearer ${legacy.token}` }, body: JSON.stringify(enrol('P-8')) }),
    );
    expect(res.statusCode).toBe(403);
    const { error } = JSON.parse(res.body!) as { error: string };
    expect(error).toContain(
      'enrolment.therapy: a token without a device kind (issued before scopes) may not set it (therapy, product, infusedAt, weightKg and hypotension thresholds come from an ehr or manual token; give it a kind with crs token scope TOKEN_ID --kind ehr --backend aws --outputs FILE (or manual))',
    );
    expect(queue.calls).toBe(0);
  });

  it('answers 400 naming the field and the problem', async () => {
    const bad = { ...msg('P-7', 0, { vitals: { temperatureC: 101.3 } }) };
    const res = await handler()(httpEvent({ headers: auth(), body: JSON.stringify(bad) }));
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body!).errors).toEqual([
      expect.stringMatching(/^vitals\.temperatureC: 101\.3 is outside 25-45 \(Fahrenheit\?\)/),
    ]);
    expect(queue.calls).toBe(0);
  });

  it('answers 413 over the size limit', async () => {
    const huge = JSON.stringify({ ...msg('P-8', 0, { vitals: { heartRate: 90 } }), pad: 'x'.repeat(70 * 1024) });
    const res = await handler()(httpEvent({ headers: auth(), body: huge }));
    expect(res.statusCode).toBe(413);
    expect(queue.calls).toBe(0);
  });

  it('answers 503 with Retry-After when the queue fails, so the device keeps the message and retries', async () => {
    queue.failWith = new Error('SQS down');
    const res = await handler()(
      httpEvent({ headers: auth(), body: JSON.stringify(msg('P-9', 0, { vitals: { heartRate: 90 } })) }),
    );
    expect(res.statusCode).toBe(503);
    expect(res.headers?.['retry-after']).toBe('5');
    expect(queue.messages).toHaveLength(0);
  });

  it('answers a duplicate messageId like an accepted one, and queues it once', async () => {
    const m = msg('P-10', 0, { vitals: { heartRate: 90 } });
    const first = await handler()(httpEvent({ headers: auth(), body: JSON.stringify(m) }));
    const again = await handler()(httpEvent({ headers: auth(), body: JSON.stringify(m) }));
    expect(again.statusCode).toBe(first.statusCode);
    expect(again.body).toBe(first.body);
    expect(queue.messages).toHaveLength(1);
  });

  it("applies the token's scope as the embedded server does: a pump claiming the EHR is refused (403, counted), a ward token reads wards", async () => {
    const pump = issueToken('pump-3', new Date(NOW), { kind: 'pump' });
    await tokens.put(pump.record);
    const claim = {
      ...msg('P-12', 0, { enrolment: { hypotension: { systolicBelow: 20, mapBelow: 10 } } }),
      source: { deviceId: 'ehr', kind: 'ehr' as const },
    };
    const { out } = await captureOutput(async () => {
      const res = await handler()(
        httpEvent({ headers: { authorization: `Bearer ${pump.token}` }, body: JSON.stringify(claim) }),
      );
      expect(res.statusCode).toBe(403);
      expect(JSON.parse(res.body!).errors).toEqual([
        'source.kind: "ehr" is not allowed for a pump token (it sends source.kind "pump")',
        'enrolment: a pump token may not send enrolment (it sends vasopressors, medications)',
      ]);
    });
    expect(metricSum(out, 'AuthFailures')).toBe(1);
    expect(queue.calls).toBe(0);

    // Wards come from the state table (DynamoPatientDirectory); here a directory that knows P-13 in ward ICU.
    const ward = issueToken('gw-h4', new Date(NOW), { kind: 'monitor', wards: ['H4'] });
    await tokens.put(ward.record);
    const looked: string[][] = [];
    const patients = {
      lookup: async (ids: readonly string[]) => {
        looked.push([...ids]);
        return new Map([['P-13', { known: true, ward: 'ICU' }]]);
      },
    };
    const scoped = quiet(mod.createIngestHandler({ queue, tokens, now: () => NOW, patients, ...live }));
    const refused = await scoped(
      httpEvent({
        headers: { authorization: `Bearer ${ward.token}` },
        body: JSON.stringify(msg('P-13', 0, { vitals: { heartRate: 90 } })),
      }),
    );
    expect(refused.statusCode).toBe(403);
    expect(JSON.parse(refused.body!).error).toMatch(
      /patient P-13 is in another ward, outside this token's wards \(H4\)/,
    );
    const placed = await scoped(
      httpEvent({
        headers: { authorization: `Bearer ${ward.token}` },
        body: JSON.stringify(msg('P-14', 0, { enrolment: { ward: 'H4' }, vitals: { heartRate: 90 } })),
      }),
    );
    expect(placed.statusCode).toBe(202);
    expect(queue.messages.map((q) => [q.message.patientId, q.sender])).toEqual([['P-14', 'gw-h4']]);
    // An unscoped token needs no lookup at all.
    await scoped(httpEvent({ headers: auth(), body: JSON.stringify(msg('P-15', 0, { vitals: { heartRate: 90 } })) }));
    expect(looked).toEqual([['P-13'], ['P-14']]);
  });

  it('logs ids and statuses only: no values, no bed, no error texts that echo values', async () => {
    const good = msg('P-11', 0, { enrolment: { bed: 'BED-SECRET-7', ward: 'H4' }, vitals: { temperatureC: 39.7 } });
    const bad = msg('P-11', 1, { vitals: { temperatureC: 104.9 } });
    const { out } = await captureOutput(async () => {
      await handler()(httpEvent({ headers: auth(), body: JSON.stringify(good) }));
      await handler()(httpEvent({ headers: auth(), body: JSON.stringify(bad) }));
    });
    expect(out).toContain(good.messageId);
    expect(out).toContain('"status":400');
    for (const value of ['BED-SECRET-7', '39.7', '104.9', 'Fahrenheit', token])
      expect(withoutTimestamps(out)).not.toContain(value);
    expect(metricSum(out, 'MessagesAccepted')).toBe(1);
    expect(metricSum(out, 'Rejects')).toBe(1);
  });
});

describe('pinned by a mutation run', () => {
  const run = (event: ReturnType<typeof httpEvent>) =>
    captureOutput(() => mod.createIngestHandler({ queue, tokens, now: () => NOW, ...live })(event));
  const levelOf = (out: string, message: string) =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{') && l.includes(`"message":"${message}"`))
      .map((l) => (JSON.parse(l) as { level: string }).level);

  it('logs the route a refused request took as the API declares it, never its path: a client writes what it likes there', async () => {
    const event = {
      ...httpEvent({ path: '/fhir/r4/Zebedee-Quigglesworth', body: '{}' }),
      routeKey: 'POST /fhir/r4/{resource}',
    };
    const { result, out } = await run(event);
    expect(result.statusCode).toBe(404);
    expect(out).toContain('"route":"POST /fhir/r4/{resource}"');
    expect(out).not.toContain('Quigglesworth');
  });

  it('counts a queue outage as QueueUnavailable, not as a reject, and logs it as an error', async () => {
    queue.failWith = new Error('SQS down');
    const body = JSON.stringify(msg('P-11', 0, { vitals: { heartRate: 90 } }));
    const { result, out } = await run(httpEvent({ headers: auth(), body }));
    expect(result.statusCode).toBe(503);
    expect(metricSum(out, 'QueueUnavailable')).toBe(1);
    expect(metricSum(out, 'Rejects')).toBe(0);
    expect(levelOf(out, 'refused')).toEqual(['ERROR']);
  });

  it('counts every message of an accepted batch in MessagesAccepted', async () => {
    const batch = [1, 2, 3].map((i) => msg('P-12', i, { vitals: { heartRate: 80 + i } }));
    const { result, out } = await run(
      httpEvent({ path: '/v1/messages/batch', headers: auth(), body: JSON.stringify(batch) }),
    );
    expect(result.statusCode).toBe(202);
    expect(metricSum(out, 'MessagesAccepted')).toBe(3);
  });

  it('answers 405 to a GET on the message route, queueing nothing', async () => {
    const body = JSON.stringify(msg('P-13', 0, { vitals: { heartRate: 90 } }));
    const { result } = await run(httpEvent({ method: 'GET', headers: auth(), body }));
    expect(result.statusCode).toBe(405);
    expect(result.headers?.allow).toBe('POST');
    expect(queue.calls).toBe(0);
  });

  it('decodes a base64 body as UTF-8: a bed label with an accent is queued as sent', async () => {
    const m = msg('P-14', 0, { enrolment: { bed: 'Lit é-3' } });
    const { result } = await run(httpEvent({ headers: auth(), body: JSON.stringify(m), base64: true }));
    expect(result.statusCode).toBe(202);
    expect(queue.messages[0]!.message.enrolment?.bed).toBe('Lit é-3');
  });

  it('answers 400 saying the body is not JSON when API Gateway passes no body at all', async () => {
    const event = httpEvent({ headers: auth() });
    delete event.body;
    const { result } = await run(event);
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body as string).errors).toEqual([expect.stringMatching(/^body is not valid JSON: /)]);
  });
});
