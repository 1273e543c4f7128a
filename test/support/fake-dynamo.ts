// A DynamoDB table model behind aws-sdk-client-mock, for adapter tests: items by key, the condition, key condition
// and filter expressions the adapters use (=, <, <=, >, >=, begins_with, attribute_exists, attribute_not_exists,
// joined by AND), all-or-nothing transactions with cancellation reasons, global secondary indexes (projected as
// the whole item; the adapters read only keys from them), and pages of `pageSize` items so that callers must
// follow LastEvaluatedKey.
import {
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  TransactionCanceledException,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoStateStore } from '#adapters/aws/dynamo-state-store.ts';
import { AUDIT_TABLE, PAGES_TABLE, SEEN_TABLE, STATE_TABLE } from '#adapters/aws/table-layout.ts';

type Item = Record<string, AttributeValue>;
type Names = Record<string, string> | undefined;
type Values = Record<string, AttributeValue> | undefined;

export interface TableSpec {
  partitionKey: string;
  sortKey?: string;
  indexes?: Record<string, { partitionKey: string; sortKey?: string }>;
}

/**
 * A copy of an item, as DynamoDB keeps it apart from the caller's objects: binary values copied byte for byte.
 * (structuredClone copies the whole buffer a binary view lies in: zlib's few hundred bytes of output sit in a 16 KB
 * buffer, and a run of 100,000 messages kept 1.9 GB of them.)
 */
function copy<T>(value: T): T {
  if (value instanceof Uint8Array) return new Uint8Array(value) as T;
  if (Array.isArray(value)) return value.map(copy) as T;
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copy(v)])) as T;
  return value;
}

/**
 * DynamoDB refuses an item holding an attribute value with no type set (`{ S: undefined }`, which the SDK sends as
 * `{}`): "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes".
 */
function checkValues(values: Record<string, AttributeValue> | undefined): void {
  const check = (v: AttributeValue): void => {
    const set = Object.entries(v).filter(([, x]) => x !== undefined);
    if (set.length !== 1)
      throw Object.assign(
        new Error('Supplied AttributeValue is empty, must contain exactly one of the supported datatypes'),
        { name: 'ValidationException' },
      );
    if (v.M) Object.values(v.M).forEach(check);
    if (v.L) v.L.forEach(check);
  };
  Object.values(values ?? {}).forEach(check);
}

const scalar = (v: AttributeValue | undefined): string | number | undefined =>
  v?.S !== undefined ? v.S : v?.N !== undefined ? Number(v.N) : undefined;

/** The update expressions the adapters use: `ADD #set :values` (string sets) and `SET #a = :v`, in any order. */
function update(item: Item, expression: string, names: NonNullable<Names>, values: NonNullable<Values>): Item {
  const out = copy(item);
  for (const [, action, body] of expression.matchAll(/(ADD|SET)\s+(.+?)(?=\s+(?:ADD|SET)\s|$)/g)) {
    for (const part of body!.split(',')) {
      const m = part.trim().match(action === 'ADD' ? /^(#\w+)\s+(:\w+)$/ : /^(#\w+)\s*=\s*(:\w+)$/);
      if (!m) throw new Error(`fake DynamoDB: cannot ${action} "${part}"`);
      const name = names[m[1]!]!;
      const value = values[m[2]!]!;
      if (action === 'SET') out[name] = value;
      else out[name] = { SS: [...new Set([...(out[name]?.SS ?? []), ...(value.SS ?? [])])] };
    }
  }
  return out;
}

/**
 * Evaluates "a AND b AND ..." where each clause is one of the forms the adapters write, or "(a OR b ...)" of such
 * forms.
 */
function evaluate(expression: string | undefined, item: Item | undefined, names: Names, values: Values): boolean {
  if (!expression) return true;
  const name = (n: string) => (n.startsWith('#') ? (names?.[n] ?? n) : n);
  const value = (v: string) => values?.[v.trim()];
  const anyOf = /^\((.+)\)$/;
  return expression.split(/\s+AND\s+/).every((clause) => {
    const or = clause.match(anyOf);
    if (or) return or[1]!.split(/\s+OR\s+/).some((c) => evaluate(c, item, names, values));
    let m = clause.match(/^attribute_(not_)?exists\((\S+)\)$/);
    if (m) return (item?.[name(m[2]!)] === undefined) === (m[1] !== undefined);
    m = clause.match(/^begins_with\((\S+),\s*(\S+)\)$/);
    if (m) return String(scalar(item?.[name(m[1]!)]) ?? '').startsWith(String(scalar(value(m[2]!))));
    m = clause.match(/^(\S+)\s*(=|<=|>=|<|>)\s*(\S+)$/);
    if (!m) throw new Error(`fake DynamoDB cannot evaluate "${clause}"`);
    const a = scalar(item?.[name(m[1]!)]);
    const b = scalar(value(m[3]!));
    if (a === undefined || b === undefined) return false;
    return { '=': a === b, '<': a < b, '<=': a <= b, '>': a > b, '>=': a >= b }[m[2]!]!;
  });
}

/** The attributes a projection asks for, as DynamoDB returns them (top-level names: what the adapters ask for). */
function project(item: Item, expression: string | undefined, names: Record<string, string> | undefined): Item {
  if (!expression) return item;
  const keep = new Set(expression.split(',').map((p) => names?.[p.trim()] ?? p.trim()));
  return Object.fromEntries(Object.entries(item).filter(([k]) => keep.has(k)));
}

export class FakeDynamo {
  readonly mock = mockClient(DynamoDBClient);
  readonly tables = new Map<string, Map<string, Item>>();
  /** Items per Query or BatchGetItem answer. */
  pageSize = 1000;

  constructor(private readonly specs: Record<string, TableSpec>) {
    this.reset();
  }

  private made?: DynamoDBClient;

  /**
   * A client of the fake: an object of its own each call (a test may replace its `send`, as faultyClient does), on
   * one real client made once. The fake answers DynamoDBClient's `send` whatever the instance; constructing a client
   * (its configuration resolved from the environment, an HTTP handler) was about a seventh of a crash-anywhere file's
   * CPU, made anew for every store of every crash point.
   */
  client(): DynamoDBClient {
    this.made ??= new DynamoDBClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    return Object.create(this.made) as DynamoDBClient;
  }

  table(name: string): Map<string, Item> {
    let t = this.tables.get(name);
    if (!t) this.tables.set(name, (t = new Map()));
    return t;
  }

  items(name: string): Item[] {
    return [...this.table(name).values()];
  }

  private spec(name: string): TableSpec {
    const s = this.specs[name];
    if (!s) throw new Error(`fake DynamoDB has no table ${name}`);
    return s;
  }

  private keyOf(name: string, item: Item): string {
    const s = this.spec(name);
    return `${scalar(item[s.partitionKey])}\u0000${s.sortKey ? scalar(item[s.sortKey]) : ''}`;
  }

  private conditionFailed(): ConditionalCheckFailedException {
    return new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
  }

  reset(): void {
    this.tables.clear();
    this.mock.reset();
    // One fake for every command, answered by its class: aws-sdk-client-mock's `on(Command)` adds a sinon matcher per
    // command, each tried on every call (deep comparisons: about a sixth of a crash-anywhere file's CPU). The calls
    // are still recorded (commandCalls), and a test's own `mock.on(...)` still comes first.
    const answers = new Map<unknown, (input: never) => unknown>();
    // The input untyped, as aws-sdk-client-mock's callsFake gives it: the tables' fields are read as the adapters send them.
    const answer = (command: new (input: never) => unknown, fn: (input: any) => unknown) => answers.set(command, fn);
    this.mock.send.callsFake((command) => {
      const fn = answers.get(command.constructor);
      try {
        return fn?.(command.input as never) as never;
      } catch (err) {
        return Promise.reject(err);
      }
    });
    answer(GetItemCommand, (input) => {
      const item = this.table(input.TableName).get(this.keyOf(input.TableName, input.Key));
      return {
        Item: item ? project(copy(item), input.ProjectionExpression, input.ExpressionAttributeNames) : undefined,
      };
    });
    answer(PutItemCommand, (input) => {
      checkValues(input.Item);
      checkValues(input.ExpressionAttributeValues);
      const key = this.keyOf(input.TableName, input.Item);
      if (
        !evaluate(
          input.ConditionExpression,
          this.table(input.TableName).get(key),
          input.ExpressionAttributeNames,
          input.ExpressionAttributeValues,
        )
      )
        throw this.conditionFailed();
      this.table(input.TableName).set(key, copy(input.Item));
      return {};
    });
    answer(DeleteItemCommand, (input) => {
      this.table(input.TableName).delete(this.keyOf(input.TableName, input.Key));
      return {};
    });
    answer(TransactWriteItemsCommand, (input) => {
      type Op = {
        TableName: string;
        Item?: Item;
        Key?: Item;
        UpdateExpression?: string;
        ConditionExpression?: string;
        ExpressionAttributeNames?: Names;
        ExpressionAttributeValues?: Values;
        ReturnValuesOnConditionCheckFailure?: string;
      };
      const ops: Op[] = ((input.TransactItems ?? []) as { Put?: Op; Update?: Op }[]).map((t) => {
        if (!t.Put && !t.Update) throw new Error('fake DynamoDB transactions take Put and Update only');
        return (t.Put ?? t.Update)!;
      });
      for (const o of ops) {
        checkValues(o.Item);
        checkValues(o.ExpressionAttributeValues);
      }
      if (ops.length > 100)
        throw Object.assign(new Error('Member must have length less than or equal to 100'), {
          name: 'ValidationException',
        });
      const keys = ops.map((o) => this.keyOf(o.TableName, (o.Item ?? o.Key)!));
      if (new Set(keys.map((k, i) => `${ops[i]!.TableName}|${k}`)).size !== keys.length) {
        throw Object.assign(new Error('Transaction request cannot include multiple operations on one item'), {
          name: 'ValidationException',
        });
      }
      const reasons = ops.map((o, i) => {
        const current = this.table(o.TableName).get(keys[i]!);
        if (evaluate(o.ConditionExpression, current, o.ExpressionAttributeNames, o.ExpressionAttributeValues))
          return { Code: 'None' };
        return {
          Code: 'ConditionalCheckFailed',
          ...(o.ReturnValuesOnConditionCheckFailure === 'ALL_OLD' && current ? { Item: copy(current) } : {}),
        };
      });
      if (reasons.some((r) => r.Code !== 'None')) {
        throw new TransactionCanceledException({
          message: 'Transaction cancelled',
          $metadata: {},
          CancellationReasons: reasons,
        });
      }
      ops.forEach((o, i) => {
        const table = this.table(o.TableName);
        if (o.Item) return void table.set(keys[i]!, copy(o.Item));
        table.set(
          keys[i]!,
          update(
            table.get(keys[i]!) ?? copy(o.Key!),
            o.UpdateExpression!,
            o.ExpressionAttributeNames ?? {},
            o.ExpressionAttributeValues ?? {},
          ),
        );
      });
      return {};
    });
    answer(QueryCommand, (input) => {
      const s = this.spec(input.TableName);
      const keys = input.IndexName ? s.indexes?.[input.IndexName] : s;
      if (!keys) throw new Error(`fake DynamoDB: no index ${input.IndexName} on ${input.TableName}`);
      let items = this.items(input.TableName).filter(
        (i) =>
          i[keys.partitionKey] !== undefined &&
          (!keys.sortKey || i[keys.sortKey] !== undefined) &&
          evaluate(input.KeyConditionExpression, i, input.ExpressionAttributeNames, input.ExpressionAttributeValues),
      );
      const sortValue = (i: Item) => (keys.sortKey ? (scalar(i[keys.sortKey]) ?? '') : '');
      items.sort((a, b) => (sortValue(a) < sortValue(b) ? -1 : sortValue(a) > sortValue(b) ? 1 : 0));
      const start = input.ExclusiveStartKey
        ? items.findIndex(
            (i) => this.keyOf(input.TableName, i) === this.keyOf(input.TableName, input.ExclusiveStartKey),
          ) + 1
        : 0;
      const page = items.slice(start, start + this.pageSize);
      const more = start + this.pageSize < items.length;
      items = page.filter((i) =>
        evaluate(input.FilterExpression, i, input.ExpressionAttributeNames, input.ExpressionAttributeValues),
      );
      const last = page[page.length - 1];
      return {
        Items: items.map((i) => copy(i)),
        ...(more && last
          ? {
              LastEvaluatedKey: {
                [s.partitionKey]: last[s.partitionKey]!,
                ...(s.sortKey ? { [s.sortKey]: last[s.sortKey]! } : {}),
              },
            }
          : {}),
      };
    });
    answer(BatchGetItemCommand, (input) => {
      const Responses: Record<string, Item[]> = {};
      const UnprocessedKeys: Record<string, { Keys: Item[] }> = {};
      for (const [name, request] of Object.entries(input.RequestItems as Record<string, { Keys: Item[] }>)) {
        if (request.Keys.length > 100)
          throw Object.assign(new Error('Too many items requested for the BatchGetItem call'), {
            name: 'ValidationException',
          });
        const now = request.Keys.slice(0, this.pageSize);
        const later = request.Keys.slice(this.pageSize);
        Responses[name] = now.flatMap((k) => {
          const item = this.table(name).get(this.keyOf(name, k));
          return item ? [copy(item)] : [];
        });
        if (later.length > 0) UnprocessedKeys[name] = { Keys: later };
      }
      return { Responses, ...(Object.keys(UnprocessedKeys).length ? { UnprocessedKeys } : {}) };
    });
  }

  /** The item stored at the key of `key` (its key attributes; the rest is ignored). */
  itemAt(name: string, key: Item): Item | undefined {
    return this.table(name).get(this.keyOf(name, key));
  }

  restore(): void {
    this.mock.restore();
  }
}

/** The grade function's tables as the state store uses them: state (with the feed index), audit, seen messages. */
export const STATE_STORE_TABLES: Record<string, TableSpec> = {
  state: {
    partitionKey: 'pk',
    sortKey: 'sk',
    indexes: {
      [STATE_TABLE.feedIndex]: {
        partitionKey: STATE_TABLE.feedShardAttribute,
        sortKey: STATE_TABLE.feedSinceAttribute,
      },
    },
  },
  audit: { partitionKey: AUDIT_TABLE.partitionKey, sortKey: AUDIT_TABLE.sortKey },
  seen: { partitionKey: SEEN_TABLE.partitionKey, sortKey: SEEN_TABLE.sortKey },
};

/** All the tables the grade, notify and escalate functions use: STATE_STORE_TABLES and pages (with `byDue`). */
export const PAGING_TABLES: Record<string, TableSpec> = {
  ...STATE_STORE_TABLES,
  pages: {
    partitionKey: 'pk',
    sortKey: 'sk',
    indexes: {
      [PAGES_TABLE.dueIndex]: { partitionKey: PAGES_TABLE.dueShardAttribute, sortKey: PAGES_TABLE.dueAtAttribute },
    },
  },
};

/** A state store on those tables of a FakeDynamo, its clock fixed at `now`. */
export const stateStoreOn = (ddb: FakeDynamo, now: number) =>
  new DynamoStateStore(ddb.client(), 'state', () => now, 'audit', 'seen');

/** How a request fails: not at all, before it is carried out, or after (carried out, its answer lost). */
export type Fault = 'none' | 'before' | 'after';

/** A client of the fake whose requests fail as the plan says, one entry a request (shifted), then all succeed. */
export function faultyClient(ddb: FakeDynamo, plan: Fault[]): DynamoDBClient {
  const client = ddb.client();
  const send = client.send.bind(client) as (command: unknown) => Promise<unknown>;
  client.send = (async (command: unknown) => {
    const fault = plan.shift() ?? 'none';
    if (fault === 'before') throw Object.assign(new Error('injected: failed before'), { name: 'InternalServerError' });
    const out = await send(command);
    if (fault === 'after') throw Object.assign(new Error('injected: response lost'), { name: 'TimeoutError' });
    return out;
  }) as typeof client.send;
  return client;
}
