// `crs restore` refuses what it cannot do before any call (exit 2), naming the flag: the tables DynamoDB restored
// are given by name, the instant by --at with its offset, and only --backend aws restores this way.
import { describe, expect, it } from 'vitest';
import { crsMain } from '#test/support/cli.ts';

const env = { AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: 'http://127.0.0.1:9', CRS_STATE_TABLE: undefined };
const from = ['--from-state-table', 'S-at-T', '--from-seen-table', 'M-at-T', '--from-pages-table', 'P-at-T'];
const stack = ['--state-table', 'S', '--seen-table', 'M', '--pages-table', 'P'];

describe('crs restore usage', () => {
  it.each([
    [['--at', '2026-12-07T09:00:00Z', ...from, ...stack], '--backend aws is needed'],
    [['--backend', 'aws', ...from, ...stack], 'restore needs --at TIME'],
    [['--backend', 'aws', '--at', '2026-12-07T09:00:00', ...from, ...stack], '--at takes an RFC 3339 time'],
    [['--backend', 'aws', '--at', '2026-12-07T09:00:00Z', ...from.slice(2), ...stack], '--from-state-table NAME'],
    [['--backend', 'aws', '--at', '2026-12-07T09:00:00Z', ...from, ...stack.slice(2)], '--state-table NAME'],
    [['--backend', 'aws', '--at', '2026-12-07T09:00:00Z', ...from, ...stack, '--from-pages-table', 'P'], "stack's own"],
    [['--backend', 'aws', '--at', '2026-12-07T09:00:00Z', ...from, ...stack, '--to', 'x'], "Unknown option '--to'"],
  ])('%j: exit 2, %s', async (args, said) => {
    const r = await crsMain(['restore', ...args], { env });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(said);
    expect(r.stderr).toContain('usage:');
  });

  it('a call that fails is exit 1', async () => {
    const r = await crsMain(['restore', '--backend', 'aws', '--at', '2026-12-07T09:00:00Z', ...from, ...stack], {
      env: { ...env, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_MAX_ATTEMPTS: '1' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^crs restore: /);
  });
});
