// What the docs tell an operator to type exists: every `crs COMMAND [SUB-COMMAND] ... --flag` in README.md and
// docs/*.md (inline code spans and fenced code blocks; `npx crs`, `bin/crs.js` too) names a command main.ts
// dispatches, a sub-command the command takes and flags its parser accepts, read from the very flag tables the
// commands hand util.parseArgs (REPLAY_OPTIONS, SERVE_OPTIONS, ..., the *_ACTIONS lists): no copy to drift. Every
// `npm run X` (and `npm start`, `npm test`) is a script of package.json, and every CRS_* variable the docs name (prose
// too) is read somewhere in shared/, functions/, infra/, bin/ or .ci/.
//
// How an occurrence is read: a command runs from `crs` to the end of its code span or line (a fenced block's `\` line
// continuations joined), or to a shell separator outside brackets (` | `, `;`, `&&`, `||`, ` # `) or the next `crs`;
// every `--flag` in that stretch is the command's, `[--data DIR]` and `(--all | ID...)` included. `crs serve` with
// `--backend aws` is checked against serve-aws.ts's table, without it against the embedded server's. A command
// inside a message quoted (`then give crs token another --data DIR`) has its flags checked, not its words.
//
// History: the docs may name what no longer exists when they say so, dated. A code span or variable whose clause
// (from the previous ". ", "; ", blank line or table cell up to it) holds "until YYYY-MM-DD" or "before YYYY-MM-DD",
// and a fenced line holding one, is not checked: `until 2026-12-05 \`--x\` was ...`. Anything else that names a
// missing command, sub-command, flag, script or variable fails, named with its file and line.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ACK_KEY_ACTIONS, ACK_KEY_OPTIONS } from '#cli/ack-key.ts';
import { AUDIT_ACTIONS, AUDIT_OPTIONS } from '#cli/audit.ts';
import { BACKUP_OPTIONS } from '#cli/backup.ts';
import { BOARD_LINK_OPTIONS } from '#cli/board-link.ts';
import { DEAD_LETTERS_ACTIONS, DEAD_LETTERS_OPTIONS } from '#cli/dead-letters.ts';
import { DOCTOR_OPTIONS } from '#cli/doctor.ts';
import { REPLAY_OPTIONS, SCHEMA_OPTIONS } from '#cli/main.ts';
import { BRIDGE_OPTIONS } from '#cli/mllp-bridge.ts';
import { OUTBOX_ACTIONS, OUTBOX_OPTIONS } from '#cli/outbox.ts';
import { RESTORE_OPTIONS } from '#cli/restore.ts';
import { SERVE_AWS_OPTIONS } from '#cli/serve-aws.ts';
import { SERVE_OPTIONS, START_OPTIONS } from '#cli/serve.ts';
import { SILENCE_ACTIONS, SILENCE_OPTIONS } from '#cli/silence.ts';
import { SIMULATE_OPTIONS } from '#cli/simulate.ts';
import { TOKEN_ACTIONS, TOKEN_OPTIONS } from '#cli/tokens.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

interface Command {
  options: Record<string, unknown>;
  actions?: readonly string[];
}

// main.ts's dispatch: which table each command parses with (the test below checks main.ts has no other command).
const COMMANDS: Record<string, Command> = {
  replay: { options: REPLAY_OPTIONS },
  schema: { options: SCHEMA_OPTIONS },
  serve: { options: { ...SERVE_OPTIONS, backend: {} } },
  start: { options: START_OPTIONS },
  simulate: { options: SIMULATE_OPTIONS },
  'mllp-bridge': { options: BRIDGE_OPTIONS },
  backup: { options: BACKUP_OPTIONS },
  restore: { options: RESTORE_OPTIONS },
  'board-link': { options: BOARD_LINK_OPTIONS },
  'ack-key': { options: ACK_KEY_OPTIONS, actions: ACK_KEY_ACTIONS },
  audit: { options: AUDIT_OPTIONS, actions: AUDIT_ACTIONS },
  silence: { options: SILENCE_OPTIONS, actions: SILENCE_ACTIONS },
  outbox: { options: OUTBOX_OPTIONS, actions: OUTBOX_ACTIONS },
  'dead-letters': { options: DEAD_LETTERS_OPTIONS, actions: DEAD_LETTERS_ACTIONS },
  token: { options: TOKEN_OPTIONS, actions: TOKEN_ACTIONS },
  doctor: { options: DOCTOR_OPTIONS },
};

interface Doc {
  file: string;
  text: string;
}

const docs = (): Doc[] =>
  [
    'README.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ].map((file) => ({ file, text: readFileSync(join(ROOT, file), 'utf8') }));

/** A stretch of code (a code span, or a line of a fenced block) and the line of the doc it starts on. */
interface Code {
  file: string;
  line: number;
  code: string;
  /** Its sentence up to it (a fenced line: the line): what the history rule reads. */
  sentence: string;
}

const HISTORY = /\b(?:until|before)\s+\d{4}-\d{2}-\d{2}\b/i;

const lineOf = (text: string, index: number) => text.slice(0, index).split('\n').length;

/** The clause of `text` up to `start`: from the previous ". ", "; ", blank line or table cell. */
function sentenceBefore(text: string, start: number): string {
  const before = text.slice(0, start);
  const from = Math.max(...['. ', '; ', '\n\n', '|'].map((stop) => before.lastIndexOf(stop)), 0);
  return before.slice(from);
}

/** Every code span and fenced-block line of a doc. */
function codeOf(doc: Doc): Code[] {
  const out: Code[] = [];
  const { file, text } = doc;
  // Fenced blocks first, blanked (same length, so the lines still count) before the spans are read.
  let prose = text;
  for (const m of text.matchAll(/^ *(```|~~~)[^\n]*\n([\s\S]*?)^ *\1 *$/gm)) {
    const first = lineOf(text, m.index) + 1;
    const lines = m[2]!.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const start = i;
      let joined = lines[i]!;
      // A command continued with a backslash is one command.
      while (joined.endsWith('\\') && i + 1 < lines.length) joined = `${joined.slice(0, -1)} ${lines[++i]}`;
      out.push({ file, line: first + start, code: joined, sentence: joined });
    }
    prose = prose.slice(0, m.index) + m[0].replace(/[^\n]/g, ' ') + prose.slice(m.index + m[0].length);
  }
  for (const m of prose.matchAll(/(`+)([^`][\s\S]*?)\1(?!`)/g)) {
    const code = m[2]!.replace(/\s+/g, ' ');
    out.push({
      file,
      line: lineOf(text, m.index),
      code,
      sentence: sentenceBefore(prose, m.index),
    });
  }
  return out;
}

/** The stretch of `code` from `start` to the command's end: a shell separator outside brackets, or the next crs. */
function commandStretch(code: string, start: number): string {
  let depth = 0;
  for (let i = start; i < code.length; i++) {
    const c = code[i]!;
    if (c === '[' || c === '(' || c === '{') depth++;
    else if (c === ']' || c === ')' || c === '}') depth = Math.max(0, depth - 1);
    else if (depth === 0) {
      const rest = code.slice(i);
      if (/^(?: \| | \|\| |;|&&| # |>)/.test(rest)) return code.slice(start, i);
      if (i > start && /^(?<![\w./~-])crs /.test(rest) && /\s/.test(code[i - 1]!)) return code.slice(start, i);
    }
  }
  return code.slice(start);
}

interface Finding {
  where: string;
  what: string;
}

// `crs WORD` where crs is the program run: at the start of the code (after a `$ ` prompt, VAR=value settings, sudo
// and its -u USER, npx, node) or after a shell separator; not a word of a message quoted (`this crs has 8`), a path's
// part (~/.crs, crs.db) or a user's name.
const INVOCATION =
  /(?:^|[;&|(=]|\$\(|^\$) *(?:[A-Z_][A-Z0-9_]*=(?:\$\([^)]*\)|\S*) +)*(?:sudo +(?:-u +\S+ +)?)?(?:npx +)?(?:(?:\S*\/)?node +\S*bin\/crs\.js|\S*bin\/crs\.js|crs) +([a-z][a-z0-9-]*)/g;

// A command named inside a message quoted (`then start crs serve again`, `give crs token another --data DIR`): its
// flags are checked, not the words after it.
const MENTION = /(?:(?<![\w./~:-])crs|bin\/crs\.js) +([a-z][a-z0-9-]*)/g;

function commandFindings(code: Code): Finding[] {
  const findings: Finding[] = [];
  const where = `${code.file}:${code.line}`;
  const run = new Set([...code.code.matchAll(INVOCATION)].map((m) => m.index + m[0].length));
  for (const m of code.code.matchAll(MENTION)) {
    const name = m[1]!;
    const invoked = run.has(m.index + m[0].length);
    const stretch = commandStretch(code.code, m.index + m[0].length - name.length);
    const words = stretch.split(/\s+/).filter(Boolean);
    const command = COMMANDS[name];
    if (!command) {
      if (invoked && name !== 'help') findings.push({ where, what: `no command "crs ${name}" (in \`${stretch}\`)` });
      continue;
    }
    const sub = words[1];
    if (
      invoked &&
      command.actions &&
      sub !== undefined &&
      /^[a-z][a-z-]*(?:\|[a-z][a-z-]*)*$/.test(sub) &&
      sub !== 'help'
    )
      for (const a of sub.split('|'))
        if (!command.actions.includes(a))
          findings.push({ where, what: `no sub-command "crs ${name} ${a}" (it takes ${command.actions.join(', ')})` });
    const aws = /--backend[ =]aws\b/.test(stretch);
    const options: Record<string, unknown> = name === 'serve' && aws ? SERVE_AWS_OPTIONS : command.options;
    for (const f of stretch.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g))
      if (!Object.hasOwn(options, f[1]!))
        findings.push({
          where,
          what: `crs ${name}${name === 'serve' && aws ? ' --backend aws' : ''} takes no --${f[1]} (in \`${stretch}\`)`,
        });
  }
  return findings;
}

const SCRIPTS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
  .scripts;

function scriptFindings(code: Code): Finding[] {
  const findings: Finding[] = [];
  for (const m of code.code.matchAll(/\bnpm (?:run(?:-script)? ([\w:.-]+)|(start|test)\b)/g)) {
    const script = m[1] ?? m[2]!;
    if (!Object.hasOwn(SCRIPTS, script))
      findings.push({ where: `${code.file}:${code.line}`, what: `no npm script "${script}" in package.json` });
  }
  return findings;
}

/** The text of every source file the product and its CI read variables in. */
function sourceText(): string {
  const parts: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (name === 'node_modules' || name === 'cdk.out') continue;
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(?:ts|js|cjs|mjs|sh)$|^[^.]+$/.test(name)) parts.push(readFileSync(path, 'utf8'));
    }
  };
  for (const dir of ['shared', 'functions', 'infra', 'bin', '.ci']) walk(join(ROOT, dir));
  return parts.join('\n');
}

function variableFindings(doc: Doc, source: string): Finding[] {
  const findings: Finding[] = [];
  for (const m of doc.text.matchAll(/\bCRS_[A-Z0-9_]*[A-Z0-9]/g)) {
    if (new RegExp(`\\b${m[0]}\\b`).test(source)) continue;
    if (HISTORY.test(sentenceBefore(doc.text, m.index))) continue;
    findings.push({ where: `${doc.file}:${lineOf(doc.text, m.index)}`, what: `no variable ${m[0]} in the code` });
  }
  return findings;
}

const said = (findings: Finding[]) => findings.map((f) => `${f.where}: ${f.what}`);

describe('the commands the docs tell operators to type', () => {
  const all = docs();
  const code = all.flatMap(codeOf).filter((c) => !HISTORY.test(c.sentence));

  it('are read: the docs name crs commands, flags and npm scripts in code', () => {
    // A guard on the extractor itself: a change that read nothing would pass everything.
    const invocations = code.flatMap((c) => [...c.code.matchAll(INVOCATION)]);
    expect(invocations.length).toBeGreaterThan(300);
    expect(code.filter((c) => /\bnpm run /.test(c.code)).length).toBeGreaterThan(20);
  });

  it('name commands main.ts dispatches: the table of this test is every one of them', () => {
    const main = readFileSync(join(ROOT, 'shared/cli/main.ts'), 'utf8');
    const dispatched = [...main.slice(main.indexOf('switch (command)')).matchAll(/case '([a-z][a-z-]*)':/g)]
      .map((m) => m[1]!)
      .filter((c) => c !== 'help');
    expect(dispatched.sort()).toEqual(Object.keys(COMMANDS).sort());
  });

  it('name commands, sub-commands and flags the CLI takes', () => {
    expect(said(code.flatMap(commandFindings))).toEqual([]);
  });

  it('name npm scripts package.json has', () => {
    expect(said(code.flatMap(scriptFindings))).toEqual([]);
  });

  it('name CRS_ variables the code reads', () => {
    const source = sourceText();
    expect(said(all.flatMap((d) => variableFindings(d, source)))).toEqual([]);
  });
});
