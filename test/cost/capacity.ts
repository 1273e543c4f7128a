// DynamoDB's own arithmetic for what a request consumes and what an item stores, as its developer guide states it:
// - item size: the UTF-8 length of every attribute name plus its value (a string's UTF-8 bytes, a binary's bytes,
//   a number's significant digits / 2 + 1, 1 byte for a boolean or null, 3 bytes plus the elements (and 1 byte
//   each) for a list or map, the sum of the elements of a set) ("Item sizes and formats");
// - writes: 1 write unit per started KB of the larger of the item before and after (a put that replaces, an
//   update), at least 1 even when the condition fails; twice that inside TransactWriteItems;
// - reads: 1 read unit per started 4 KB of a strongly consistent read, half for an eventually consistent one, a
//   Query adds up the items it reads before rounding, a BatchGetItem rounds each item;
// - a global secondary index: writing an entry costs like a write of the entry (the table's keys, the index's keys
//   and the projected attributes), changing an indexed key deletes one entry and writes another (2 writes), and
//   a table write that leaves the index's attributes as they were writes nothing to it;
// - storage: every item's size plus 100 bytes of overhead, in the table and in each index.
import type { AttributeValue } from '@aws-sdk/client-dynamodb';

export type Item = Record<string, AttributeValue>;

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');

/** A number's stored size: its significant digits, two to a byte, plus one. */
function numberSize(n: string): number {
  const digits = n.replace(/^[-+]/, '').replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

function valueSize(v: AttributeValue): number {
  if (v.S !== undefined) return utf8(v.S);
  if (v.N !== undefined) return numberSize(v.N);
  if (v.B !== undefined) return v.B.length;
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  if (v.SS) return v.SS.reduce((n, s) => n + utf8(s), 0);
  if (v.NS) return v.NS.reduce((n, s) => n + numberSize(s), 0);
  if (v.BS) return v.BS.reduce((n, b) => n + b.length, 0);
  if (v.L) return 3 + v.L.reduce((n, e) => n + 1 + valueSize(e), 0);
  if (v.M) return 3 + Object.entries(v.M).reduce((n, [k, e]) => n + 1 + utf8(k) + valueSize(e), 0);
  throw new Error(`cannot size attribute value ${JSON.stringify(v)}`);
}

export function itemSize(item: Item | undefined): number {
  if (!item) return 0;
  let n = 0;
  for (const [name, v] of Object.entries(item)) n += utf8(name) + valueSize(v);
  return n;
}

const KB = 1024;
/** Storage overhead DynamoDB adds to every item (and every index entry). */
const ITEM_OVERHEAD = 100;

/** Write units of one standard write of items of these sizes (before, after): at least 1. */
export const writeUnits = (...sizes: number[]) => Math.max(1, Math.ceil(Math.max(...sizes) / KB));
/** Read units of reading `bytes` (one item, or a Query's items together). */
export const readUnits = (bytes: number, consistent: boolean) =>
  Math.max(1, Math.ceil(bytes / (4 * KB))) * (consistent ? 1 : 0.5);

export interface IndexModel {
  partitionKey: string;
  sortKey?: string;
  /** KEYS_ONLY, or these attributes besides the keys. */
  projection: 'KEYS_ONLY' | string[];
}

export interface TableModel {
  partitionKey: string;
  sortKey?: string;
  indexes?: Record<string, IndexModel>;
}

/** The entry an item has in an index, or none when it lacks the index's keys. */
export function indexEntry(table: TableModel, index: IndexModel, item: Item | undefined): Item | undefined {
  if (!item || item[index.partitionKey] === undefined || (index.sortKey && item[index.sortKey] === undefined))
    return undefined;
  const names = new Set([
    table.partitionKey,
    table.sortKey,
    index.partitionKey,
    index.sortKey,
    ...(index.projection === 'KEYS_ONLY' ? [] : index.projection),
  ]);
  const entry: Item = {};
  for (const n of names) if (n && item[n] !== undefined) entry[n] = item[n]!;
  return entry;
}

const same = (a: Item | undefined, b: Item | undefined) => JSON.stringify(a) === JSON.stringify(b);

/** Write units an index consumes when a table item goes from `before` to `after`. */
export function indexWriteUnits(
  table: TableModel,
  index: IndexModel,
  before: Item | undefined,
  after: Item | undefined,
): number {
  const a = indexEntry(table, index, before);
  const b = indexEntry(table, index, after);
  if (same(a, b)) return 0;
  const keyOf = (e: Item | undefined) =>
    e ? JSON.stringify([e[index.partitionKey], index.sortKey ? e[index.sortKey] : null]) : undefined;
  if (a && b && keyOf(a) === keyOf(b)) return writeUnits(itemSize(a), itemSize(b)); // a projected attribute changed
  return (a ? writeUnits(itemSize(a)) : 0) + (b ? writeUnits(itemSize(b)) : 0);
}

/** Bytes an item stores in its table and its indexes. */
export function storedBytes(table: TableModel, item: Item): number {
  let n = itemSize(item) + ITEM_OVERHEAD;
  for (const index of Object.values(table.indexes ?? {})) {
    const e = indexEntry(table, index, item);
    if (e) n += itemSize(e) + ITEM_OVERHEAD;
  }
  return n;
}
