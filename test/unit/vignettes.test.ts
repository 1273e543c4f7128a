// Every public vignette (test/fixtures/vignettes.json, a copy of the shared fixtures) through the real
// `crs replay` command (its `main`, in this process): final grades, pages (kind, condition, grade, teams, in order)
// and duplicates.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { replayMain } from '#test/support/cli.ts';

interface Vignette {
  id: string;
  scheme: 'astct2019' | 'lee2014';
  title: string;
  messages: unknown[];
  expect: {
    crs: number;
    icans: number;
    notifications: { kind: string; condition: string; toGrade: number; teams: string[] }[];
    duplicates?: number;
  };
}

const vignettes = JSON.parse(
  readFileSync(new URL('../fixtures/vignettes.json', import.meta.url), 'utf8'),
) as Vignette[];
describe('public vignettes through crs replay', () => {
  it.each(vignettes.map((v) => [`${v.id} ${v.title} (${v.scheme})`, v] as const))('%s', async (_name, v) => {
    const ndjson = v.messages.map((m) => JSON.stringify(m)).join('\n') + '\n';
    const { status, events, stderr } = await replayMain(['-', '--scheme', v.scheme], ndjson);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const assessments = events.filter((e) => e.type === 'assessment');
    const last = assessments.at(-1)!;
    expect([last.crsGrade, last.icansGrade]).toEqual([v.expect.crs, v.expect.icans]);
    const pages = events
      .filter((e) => e.type === 'notification')
      .map((e) => ({ kind: e.kind, condition: e.condition, toGrade: e.toGrade, teams: e.teams }));
    expect(pages).toEqual(v.expect.notifications);
    expect(events.filter((e) => e.type === 'duplicate')).toHaveLength(v.expect.duplicates ?? 0);
    expect(assessments).toHaveLength(v.messages.length - (v.expect.duplicates ?? 0));
  });
});
