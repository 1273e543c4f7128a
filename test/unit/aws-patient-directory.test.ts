// DynamoPatientDirectory (ward-scoped device tokens on AWS): patients' wards read from the state table with
// BatchGetItem (the state item's JSON), 100 keys at a time, unprocessed keys asked again.
import { BatchGetItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DynamoPatientDirectory } from '../../shared/adapters/aws/dynamo-patient-directory.ts';
import { reduce } from '../../shared/domain/reducer.ts';
import { DEFAULT_CONFIG } from '../../shared/domain/config.ts';
import { serializeState } from '../../shared/domain/state.ts';
import { encodeStateItem } from '../../shared/adapters/aws/state-item.ts';
import { arrivalOf } from '../../shared/app/digest.ts';
import { enrol, msg } from '../support/messages.ts';

const ddb = mockClient(DynamoDBClient);
afterAll(() => ddb.restore());
const reduced = (patientId: string, ward?: string) => {
  const m = ward ? enrol(patientId, 0, { ward }) : msg(patientId, 0, { vitals: { heartRate: 80 } });
  return reduce(undefined, m, DEFAULT_CONFIG, arrivalOf(m)).state;
};
/** Items written before the compact form: the state as JSON (`state`). */
const stateOf = (patientId: string, ward?: string) => serializeState(reduced(patientId, ward));

beforeEach(() => ddb.reset());

describe('DynamoPatientDirectory', () => {
  it('knows the patients the state table has, with their wards, and asks again for unprocessed keys', async () => {
    const items: Record<string, string> = { A: stateOf('A', 'H4'), B: stateOf('B') };
    // What the state store writes now: the compact state (`s`). Read as JSON only, it was a patient in no ward.
    const compact: Record<string, Uint8Array> = { D: encodeStateItem(reduced('D', 'ICU'), []) };
    let calls = 0;
    ddb.on(BatchGetItemCommand).callsFake((input) => {
      calls++;
      const req = input.RequestItems.state;
      expect(req.ProjectionExpression).toBe('#pk, #s, #state');
      // Strongly consistent: an eventually consistent read could give the ward a patient was just moved out of, and a
      // token of that ward was let write to the patient.
      expect(req.ConsistentRead).toBe(true);
      const keys = req.Keys as { pk: { S: string }; sk: { S: string } }[];
      expect(keys.every((k) => k.sk.S === 'state')).toBe(true);
      // The first call leaves B unprocessed (throttled).
      const answered = calls === 1 ? keys.filter((k) => k.pk.S !== 'B') : keys;
      const unprocessed = calls === 1 ? keys.filter((k) => k.pk.S === 'B') : [];
      return {
        Responses: {
          state: [
            ...answered.filter((k) => items[k.pk.S]).map((k) => ({ pk: k.pk, state: { S: items[k.pk.S]! } })),
            ...answered.filter((k) => compact[k.pk.S]).map((k) => ({ pk: k.pk, s: { B: compact[k.pk.S]! } })),
          ],
        },
        ...(unprocessed.length ? { UnprocessedKeys: { state: { Keys: unprocessed } } } : {}),
      };
    });
    const d = new DynamoPatientDirectory(new DynamoDBClient({ region: 'eu-west-1' }), 'state');
    const facts = await d.lookup(['A', 'B', 'C', 'D']);
    expect(Object.fromEntries(facts)).toEqual({
      A: { known: true, ward: 'H4' },
      B: { known: true },
      D: { known: true, ward: 'ICU' },
    });
    expect(calls).toBe(2);
  });

  // Until 2026-12-05 one state item that could not be decoded (an older shape, an item edited by hand) failed the
  // lookup: a ward-scoped gateway's every request naming that patient was answered 503 (send again), forever, and
  // the other patients' readings in it were never taken.
  it('knows a patient whose state item cannot be decoded, as unreadable, and the others with their wards', async () => {
    ddb.on(BatchGetItemCommand).resolves({
      Responses: {
        state: [
          { pk: { S: 'A' }, state: { S: stateOf('A', 'H4') } },
          { pk: { S: 'E' }, state: { S: '{"v":' } },
          { pk: { S: 'F' }, s: { B: new Uint8Array([1, 2, 3]) } },
        ],
      },
    });
    const d = new DynamoPatientDirectory(new DynamoDBClient({ region: 'eu-west-1' }), 'state');
    expect(Object.fromEntries(await d.lookup(['A', 'E', 'F']))).toEqual({
      A: { known: true, ward: 'H4' },
      E: { known: true, unreadable: true },
      F: { known: true, unreadable: true },
    });
  });

  it('asks 100 keys at a time', async () => {
    const sizes: number[] = [];
    ddb.on(BatchGetItemCommand).callsFake((input) => {
      sizes.push(input.RequestItems.state.Keys.length);
      return { Responses: { state: [] } };
    });
    await new DynamoPatientDirectory(new DynamoDBClient({ region: 'eu-west-1' }), 'state').lookup(
      Array.from({ length: 150 }, (_, i) => `P${i}`),
    );
    expect(sizes).toEqual([100, 50]);
  });
});

describe('DynamoPatientDirectory while the state table throttles', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 }));
  afterEach(() => vi.useRealTimers());

  it('backs off between the asks for unprocessed keys, as the other batch reads do: a throttle of half a second answers, not 503', async () => {
    // Until 2026-12-05 it asked again 5 times back to back (the SDK retries errors, not unprocessed keys): a throttle
    // of a few milliseconds answered a ward-scoped device 503, and every device of the ward sent again at once.
    const at: number[] = [];
    ddb.on(BatchGetItemCommand).callsFake((input) => {
      at.push(Date.now());
      const keys = input.RequestItems.state.Keys;
      if (Date.now() < 500) return { Responses: { state: [] }, UnprocessedKeys: { state: { Keys: keys } } };
      return { Responses: { state: [{ pk: keys[0].pk, state: { S: stateOf('A', 'H4') } }] } };
    });
    const d = new DynamoPatientDirectory(new DynamoDBClient({ region: 'eu-west-1' }), 'state');
    const facts = d.lookup(['A']);
    await vi.runAllTimersAsync();
    expect(Object.fromEntries(await facts)).toEqual({ A: { known: true, ward: 'H4' } });
    expect(at).toEqual([0, 100, 300, 700]);
  });

  it('fails the lookup when the table keeps a patient unanswered (throttled): never answers "unknown" for it', async () => {
    let calls = 0;
    ddb.on(BatchGetItemCommand).callsFake((input) => {
      calls++;
      return { Responses: { state: [] }, UnprocessedKeys: { state: { Keys: input.RequestItems.state.Keys } } };
    });
    const d = new DynamoPatientDirectory(new DynamoDBClient({ region: 'eu-west-1' }), 'state');
    const facts = d.lookup(['A']);
    const failed = expect(facts).rejects.toThrow(/unprocessed 6 times \(throttled\)/);
    await vi.runAllTimersAsync();
    await failed;
    expect(calls).toBe(6);
  });
});
