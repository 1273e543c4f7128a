// The site's drug codes (drugCodes): one loader for every host, refusing a bad map at start with the entry and field.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { drugCodesFile } from '#cli/drug-codes-file.ts';
import { parseDrugCodes } from '#app/interfaces/drug-codes.ts';
import { CRS_CODES, drugCodeKey, RXNORM } from '#app/interfaces/terminology.ts';

const LOCAL = 'urn:oid:1.2.3.4';
const parse = (v: unknown) => parseDrugCodes(typeof v === 'string' ? v : JSON.stringify(v), 'map.json');

describe('parseDrugCodes', () => {
  it('reads each entry by its system and code', () => {
    const codes = parse([
      { system: LOCAL, code: '40012', drug: 'norepinephrine' },
      { system: LOCAL, code: '555', drug: 'not-graded' },
      { system: RXNORM, code: '7512', drug: 'norepinephrine' },
      { system: LOCAL, code: 'TOCI 8', drug: 'tocilizumab' },
    ]);
    expect([...codes]).toEqual([
      [drugCodeKey(LOCAL, '40012'), 'norepinephrine'],
      [drugCodeKey(LOCAL, '555'), 'not-graded'],
      [drugCodeKey(RXNORM, '7512'), 'norepinephrine'],
      [drugCodeKey(LOCAL, 'TOCI 8'), 'tocilizumab'],
    ]);
    expect(parse([]).size).toBe(0);
  });

  it.each([
    ['not JSON', '[{', /^map\.json: not JSON/],
    ['not a list', { system: LOCAL }, /^map\.json: the map: /],
    ['a drug not the contract', [{ system: LOCAL, code: '1', drug: 'levophed' }], /entry 0 drug: must be one of /],
    ['no system', [{ code: '1', drug: 'dopamine' }], /entry 0 system: /],
    ['a system no URI', [{ system: 'local', code: '1', drug: 'dopamine' }], /entry 0 system: must be an absolute URI/],
    ['an empty code', [{ system: LOCAL, code: '', drug: 'dopamine' }], /entry 0 code: must be 1-256/],
    [
      'a key it does not know',
      [{ system: LOCAL, code: '1', drug: 'dopamine', display: 'x' }],
      /entry 0: Unrecognized key/,
    ],
    [
      'a built-in RxNorm vasopressor mapped to another drug',
      [
        { system: LOCAL, code: '1', drug: 'dopamine' },
        { system: RXNORM, code: '7512', drug: 'not-graded' },
      ],
      /entry 1 drug: RxNorm 7512 is norepinephrine \(built in\), never mapped to not-graded/,
    ],
    [
      'a built-in RxNorm drug mapped to a vasopressor',
      [{ system: RXNORM, code: '161', drug: 'epinephrine' }],
      /entry 0 drug: RxNorm 161 is acetaminophen/,
    ],
    ['a CRS code', [{ system: CRS_CODES, code: 'x', drug: 'dopamine' }], /entry 0 system: the CRS code system/],
    [
      'a code twice',
      [
        { system: LOCAL, code: '1', drug: 'dopamine' },
        { system: LOCAL, code: '1', drug: 'dopamine' },
      ],
      /entry 1 code: .* mapped twice/,
    ],
  ])('refuses %s, naming the setting, the entry and its field', (_, value, error) => {
    expect(() => parse(value)).toThrow(error);
  });
});

describe('parseDrugCodes, pinned by a mutation run (2026-12-07)', () => {
  it('takes 500 entries and refuses 501, naming the map', () => {
    const entries = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ system: LOCAL, code: String(i), drug: 'not-graded' }));
    expect(parse(entries(500)).size).toBe(500);
    expect(() => parse(entries(501))).toThrow(/^map\.json: the map: holds at most 500 entries/);
  });

  it.each([
    ['a leading space', ' 1'],
    ['a double space', 'A  1'],
    ['a control character', '1\t2'],
    ['257 characters', '1'.repeat(257)],
  ])('refuses a code with %s, naming the entry and field', (_, code) => {
    expect(() => parse([{ system: LOCAL, code, drug: 'dopamine' }])).toThrow(/entry 0 code: must be 1-256 printable/);
  });
});

describe('drugCodesFile (--fhir-drug-codes FILE)', () => {
  it('reads a file saved with a byte order mark', () => {
    const dir = mkdtempSync(join(tmpdir(), 'drug-codes-'));
    try {
      const file = join(dir, 'map.json');
      writeFileSync(file, `\uFEFF${JSON.stringify([{ system: LOCAL, code: '1', drug: 'dopamine' }])}`);
      const codes = drugCodesFile(file, (t) => new Error(t));
      expect([...codes]).toEqual([[drugCodeKey(LOCAL, '1'), 'dopamine']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
