// `crs token` arguments an operator can paste with an invisible or reordering character in them (a ward copied from
// a web page, a device id from a PDF), with what the refusal must say: the same on both backends
// (test/unit/aws-tokens.test.ts, test/unit/embedded-tokens.test.ts). No refusal may print such a character raw.
export const HOSTILE_TOKEN_ARGUMENTS: [argv: string[], said: string][] = [
  [
    ['issue', '--device', 'gw-1', '--kind', 'monitor', '--ward', 'ICU\u202e4H'],
    'crs token: --ward: "ICU\\u202e4H" contains a format character (U+202E), which can hide or reorder text',
  ],
  [
    ['issue', '--device', 'gw-1', '--kind', 'monitor', '--ward', 'H4\u200b'],
    'crs token: --ward: "H4\\u200b" contains a format character (U+200B)',
  ],
  [
    ['issue', '--device', 'gw-1', '--kind', 'monitor', '--ward', 'H4\u0007'],
    'crs token: --ward: "H4\\u0007" contains a control character (U+0007)',
  ],
  [
    ['issue', '--device', 'gw-1', '--kind', 'monitor', '--ward', 'x'.repeat(33)],
    `crs token: --ward: "${'x'.repeat(33)}" is longer than 32 characters`,
  ],
  [
    ['scope', 'some-token-id', '--kind', 'monitor', '--ward', 'H4\u2066'],
    'crs token: --ward: "H4\\u2066" contains a format character (U+2066)',
  ],
  [
    ['issue', '--device', 'gw\u202e-1', '--kind', 'pump'],
    'crs token: --device must be 1-128 ASCII characters, printable, no space (got "gw\\u202e-1")',
  ],
  // Printable but not ASCII: the rule said "printable characters" and refused it.
  [['issue', '--device', 'pompe-réa', '--kind', 'pump'], 'ASCII'],
  [['issue', '--device', 'gw-1', '--kind', 'pump\u202e'], '(got "pump\\u202e")'],
  [['issue', '--device', 'gw-1', '--kind', 'pump', '--patient', 'P\u200b1'], '(got "P\\u200b1")'],
  [['rot\u202eate'], 'crs token: unknown token action "rot\\u202eate"'],
  [['list', '--wa\u202erd'], "crs token: Unknown option '--wa\\u202erd'"],
];
