// What the ingest function knows of patients on AWS, for device tokens scoped to wards (shared/app/scope.ts): a
// patient is known once the state table has its state, and its ward is the state's. Read only for ward-scoped
// tokens and for the HL7 ADT events that place a patient (A01, A02...: taken for a known patient only) (one
// BatchGetItem per request, up to 100 patients, strongly consistent: read eventually consistent, a
// patient moved out of a token's ward a moment ago was still in it, and the token's write to that patient accepted,
// as was its claim of a patient just placed in another ward). No ceiling on new patients here: the
// embedded server has one (crs serve --max-patients); on AWS, scopes and the API's throttling bound growth.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { PatientDirectory, PatientFacts } from '../../app/scope.ts';
import { batchGet } from './batch-get.ts';
import { stateOfItem } from './state-item.ts';
import { STATE_TABLE as T } from './table-layout.ts';

export class DynamoPatientDirectory implements PatientDirectory {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async lookup(patientIds: readonly string[]): Promise<Map<string, PatientFacts>> {
    const out = new Map<string, PatientFacts>();
    // 100 keys a request; unprocessed keys (throttling) asked again with a backoff, a bounded number of times, then
    // an error (503: the device sends again), never "unknown" for a patient the table did not answer for.
    const keys = patientIds.map((id) => ({ [T.partitionKey]: { S: id }, [T.sortKey]: { S: T.stateSortKey } }));
    const items = await batchGet(this.client, this.tableName, keys, {
      // The ward as graded last, never an older one (a scope decides by it).
      ConsistentRead: true,
      // The compact state (what the state store writes), or the JSON of items written before it.
      ProjectionExpression: '#pk, #s, #state',
      ExpressionAttributeNames: { '#pk': T.partitionKey, '#s': T.stateAttribute, '#state': T.legacyStateAttribute },
    });
    for (const item of items) {
      const id = item[T.partitionKey]?.S;
      if (!id) continue;
      // A state item that cannot be decoded (an older shape, an item edited by hand) is a patient known whose ward
      // cannot be told (a ward-scoped token is refused it, named): until 2026-12-05 it failed the lookup, and a
      // ward-scoped gateway's every request naming that patient was answered 503, the others' readings never taken.
      let ward: string | undefined;
      try {
        ward = stateOfItem(item)?.state.enrolment.ward?.v;
      } catch {
        out.set(id, { known: true, unreadable: true });
        continue;
      }
      out.set(id, { known: true, ...(ward !== undefined ? { ward } : {}) });
    }
    return out;
  }
}
