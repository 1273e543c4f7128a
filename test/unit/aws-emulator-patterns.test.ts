// The two content filters of `crs serve --backend aws` (shared/hosts/aws-emulator/patterns.ts), as AWS evaluates
// them: the notifier's stream filter (outbox INSERTs only) and the team subscriptions' filter policies (which team,
// which ward, gets a page).
import { describe, expect, it } from 'vitest';
import { STATE_TABLE } from '#adapters/aws/table-layout.ts';
import { matchesEventPattern, matchesFilterPolicy } from '#hosts/aws-emulator/patterns.ts';

/** The stack's notify filter (infra/stack.ts), as CloudFormation carries it. */
const NOTIFY_FILTER = {
  eventName: ['INSERT'],
  dynamodb: { NewImage: { [STATE_TABLE.kindAttribute]: { S: [STATE_TABLE.outboxKind] } } },
};
const record = (eventName: string, kind?: string) => ({
  eventName,
  dynamodb: {
    Keys: { pk: { S: 'P-1' } },
    ...(kind === undefined ? {} : { NewImage: { pk: { S: 'P-1' }, [STATE_TABLE.kindAttribute]: { S: kind } } }),
  },
});
const s = (Value: string) => ({ Type: 'String', Value });
const teams = (...t: string[]) => ({ Type: 'String.Array', Value: JSON.stringify(t) });

describe('the local filters, pinned by a mutation run', () => {
  it("passes the notifier an outbox record's INSERT only", () => {
    expect(matchesEventPattern(NOTIFY_FILTER, record('INSERT', STATE_TABLE.outboxKind))).toBe(true);
    expect(matchesEventPattern(NOTIFY_FILTER, record('MODIFY', STATE_TABLE.outboxKind))).toBe(false);
    expect(matchesEventPattern(NOTIFY_FILTER, record('INSERT', 'state'))).toBe(false);
    // A record without a new image (a REMOVE): the nested pattern finds nothing to match.
    expect(matchesEventPattern(NOTIFY_FILTER, record('INSERT'))).toBe(false);
    expect(matchesEventPattern(NOTIFY_FILTER, { dynamodb: record('INSERT', STATE_TABLE.outboxKind).dynamodb })).toBe(
      false,
    );
  });

  it("gives a team's queue the pages for its team, and of its wards when it has some", () => {
    const team = { teams: ['icu'] };
    const ward = { teams: ['icu'], ward: ['W-5', 'W-6'] };
    expect(matchesFilterPolicy(team, { teams: teams('icu') })).toBe(true);
    expect(matchesFilterPolicy(team, { teams: teams('hematology', 'icu') })).toBe(true);
    expect(matchesFilterPolicy(team, { teams: teams('hematology') })).toBe(false);
    // The attribute's type matters: a String whose text is the list is not the list.
    expect(matchesFilterPolicy(team, { teams: s('["icu"]') })).toBe(false);
    expect(matchesFilterPolicy(ward, { teams: teams('icu'), ward: s('W-6') })).toBe(true);
    expect(matchesFilterPolicy(ward, { teams: teams('icu'), ward: s('W-7') })).toBe(false);
    // A page of a patient with no ward reaches no ward-limited endpoint.
    expect(matchesFilterPolicy(ward, { teams: teams('icu') })).toBe(false);
  });

  it('evaluates the operators AWS documents for both filters', () => {
    expect(matchesFilterPolicy({ a: [{ prefix: 'W-' }] }, { a: s('W-5') })).toBe(true);
    expect(matchesFilterPolicy({ a: [{ prefix: 'W-' }] }, { a: s('XW-5') })).toBe(false);
    expect(matchesFilterPolicy({ a: [{ 'anything-but': ['x'] }] }, { a: s('y') })).toBe(true);
    expect(matchesFilterPolicy({ a: [{ 'anything-but': ['x'] }] }, {})).toBe(false);
    expect(matchesFilterPolicy({ a: [{ numeric: ['>', 1, '<=', 3] }] }, { a: { Type: 'Number', Value: '3' } })).toBe(
      true,
    );
    expect(matchesFilterPolicy({ a: [{ numeric: ['>', 1, '<=', 3] }] }, { a: { Type: 'Number', Value: '1' } })).toBe(
      false,
    );
    expect(matchesFilterPolicy({ a: [{ exists: false }] }, {})).toBe(true);
    expect(matchesFilterPolicy({ a: [{ exists: false }] }, { a: s('v') })).toBe(false);
    expect(matchesEventPattern({ a: [{ exists: true }] }, { a: 1 })).toBe(true);
    expect(matchesEventPattern({ a: [{ exists: true }] }, {})).toBe(false);
  });
});
