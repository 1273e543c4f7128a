// `crs token issue --device ID --kind K [--ward W]... [--patient P]... [--expires WHEN] | scope TOKEN_ID ... |
// rotate TOKEN_ID [--expires WHEN] [--overlap DURATION] | revoke TOKEN_ID | list`: device bearer tokens, their scopes
// and expiry (shared/app/scope.ts, docs/security.md), for either backend, as
// `crs silence` and `crs audit export` are: the embedded server's data directory (the default; `--data DIR`, the
// same database `crs serve` reads, even while it runs) or an AWS deployment's DynamoDB token table
// (`--backend aws`, `--table`, CRS_TOKENS_TABLE or the stack's outputs, `--outputs FILE`; the SDK honours
// AWS_ENDPOINT_URL, so an emulator works too).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  BOARD_DEVICE_ID,
  expiryMs,
  expiryOf,
  expiryUnreadable,
  issueToken,
  parseDuration,
  rotatedExpiry,
  tokenExpired,
  refusedAsReplaced,
  replacementAmong,
  tokenPrincipal,
  type TokenBackend,
} from '#app/auth.ts';
import { DEVICE_KINDS, checkScope, describeScope, type TokenScope } from '#app/scope.ts';
import { EXPIRY_WARNING_DAYS, expiryFindingText, expiryFindings } from '#app/token-expiry.ts';
import { ENV } from '#adapters/aws/env.ts';
import { DB_FILE } from '#adapters/sqlite/db.ts';
import { instantMs } from '#domain/time.ts';
import { TOKEN_DEVICE_ID } from '#domain/scope.ts';
import { damagedDatabase, DEFAULT_DATA_DIR } from '#hosts/embedded/embedded.ts';
import type { DeviceToken, TokenStore } from '#ports';
import { idArgumentError, inline, isOneOf, shown, parseFlags } from './flags.ts';

/**
 * The expiry of a rotated token's successor when --expires is not given: as long a life from now as the old one was
 * issued with (a token that expires is replaced by one that expires, never silently by one that does not); none for
 * an old one without expiry. An old expiry or issue time the command cannot read (a hand edit): --expires is needed.
 */
function sameLifetime(old: DeviceToken, at: Date): string | undefined {
  if (old.expiresAt === undefined) return undefined;
  // Read as the server reads an expiry (strictly; until 2026-12-06 with Date.parse, which guesses at a hand edit).
  const life = expiryMs(old) - (instantMs(old.createdAt) ?? Number.NaN);
  if (!(life > 0))
    throw new UsageError(
      `the expiry of ${old.tokenId} cannot be read to give its successor as long a life: give --expires WHEN (or never)`,
    );
  return new Date(at.getTime() + life).toISOString();
}

/** How long a rotated token is still taken, unless --overlap says otherwise: a day to configure the device. */
const DEFAULT_OVERLAP = '24h';

export const TOKEN_USAGE = `usage:
  crs token issue --device DEVICE_ID --kind KIND [--ward W]... [--patient P]... [--expires WHEN] [--json]
                                                issue a token (shown once; only its hash is stored) for a device of
                                                KIND (${DEVICE_KINDS.join(', ')}): it may send what that kind
                                                produces, only for patients in its wards or its patients (none: all);
                                                WHEN: a duration (90d, 12h, 30m) or an ISO date or instant with its
                                                zone (2027-03-01, 2027-03-01T08:00:00Z); none: it never expires
  crs token rotate TOKEN_ID [--expires WHEN|never] [--overlap DURATION] [--json]
                                                issue a new token for the same device and scope (shown once), and let
                                                the old one expire after DURATION (default ${DEFAULT_OVERLAP}; 0: revoke it now);
                                                without --expires the new one lives as long as the old was issued for
  crs token scope TOKEN_ID --kind KIND [--ward W]... [--patient P]...
                                                set an active token's whole scope (the device keeps its token): the
                                                wards and patients not given are dropped (none: every patient); gives
                                                a token issued before scopes its kind
  crs token revoke TOKEN_ID                     revoke a token: the device gets 403 from then on
  crs token list [--json]                       list tokens (ids, devices, scopes, dates, expiry; never the tokens);
                                                warns of active tokens expiring within ${EXPIRY_WARNING_DAYS} days
  where: [--data DIR]                           the data directory of crs serve (default ${DEFAULT_DATA_DIR}; the default backend)
         --backend aws [--table NAME | --outputs FILE]
                                                an AWS deployment's token table: NAME, else $${ENV.tokensTable}, else
                                                TokensTableName in the stack's outputs FILE (cdk deploy --outputs-file);
                                                AWS_REGION, AWS credentials and AWS_ENDPOINT_URL apply as for the AWS CLI
`;

/** An open token store, and how to let go of it. */
export interface OpenTokens {
  tokens: TokenStore;
  close(): void;
}

export interface TokenCommandIo {
  out: (text: string) => void;
  err: (text: string) => void;
  now: () => Date;
  /** The token store of a crs serve data directory holding a database (--backend embedded). */
  embedded: (dir: string) => Promise<OpenTokens>;
  /** The token store of a DynamoDB table (--backend aws). */
  aws: (table: string) => Promise<OpenTokens>;
  env: NodeJS.ProcessEnv;
}

// Each backend's store is imported on use: the embedded command loads no AWS SDK, the AWS one no SQLite.
const defaultIo: TokenCommandIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  now: () => new Date(),
  embedded: async (dir) => {
    const { openDataDirBeside } = await import('#adapters/sqlite/db.ts');
    const { SqliteTokenStore } = await import('#adapters/sqlite/tokens.ts');
    // Beside a running server: never upgrading a database beneath one of an earlier version.
    let db: ReturnType<typeof openDataDirBeside>;
    try {
      db = openDataDirBeside(dir);
    } catch (err) {
      throw damagedDatabase(dir, err, 'crs token');
    }
    return { tokens: new SqliteTokenStore(db), close: () => db.close() };
  },
  aws: async (table) => {
    const { operatorAws, OperatorUsageError } = await import('./aws-operator.ts');
    const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
    const { DynamoTokenStore } = await import('#adapters/aws/dynamo-token-store.ts');
    let aws: { region: string };
    try {
      aws = await operatorAws(); // no region: a usage error (2), said as every AWS operator command says it
    } catch (e) {
      throw e instanceof OperatorUsageError ? new UsageError(e.message) : e;
    }
    const client = new DynamoDBClient(aws);
    return { tokens: new DynamoTokenStore(client, table), close: () => client.destroy() };
  },
  env: process.env,
};

class UsageError extends Error {}

const DEVICE_ID = TOKEN_DEVICE_ID.pattern;

/**
 * Where the token went, as the printed revoke and scope commands say it: a table given with --table, or the outputs file given,
 * is named, an empty one passed over as the command passes it over (the command without it revoked in
 * $CRS_TOKENS_TABLE's table, or was refused for want of one).
 */
const revokeWhere = (v: { backend?: string; table?: string; outputs?: string; data?: string }) =>
  v.backend === 'aws'
    ? ` --backend aws${
        v.table ? ` --table ${shellWord(v.table)}` : v.outputs ? ` --outputs ${shellWord(v.outputs)}` : ''
      }`
    : v.data !== undefined
      ? ` --data ${shellWord(v.data)}`
      : '';

/** The backend a command runs on, whose refusal reasons (tokenPrincipal) name its own crs token command. */
const backendOf = (v: { backend?: string }): TokenBackend => (v.backend === 'aws' ? 'aws' : 'embedded');

/** A path as a shell reads it back: quoted when it holds a space or anything else a shell would read otherwise. */
const shellWord = (text: string) => (/^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`);

/**
 * A TOKEN_ID no token can have, refused before any store is asked: on AWS an empty or long one failed DynamoDB's
 * key checks (exit 1), and its control characters were echoed raw in "no active token ...".
 */
function tokenIdCheck(tokenId: string): void {
  const bad = idArgumentError('TOKEN_ID', tokenId, 128);
  if (bad) throw new UsageError(bad);
}

/** TokensTableName of a stack's outputs file; a file that cannot be read is a usage error, as for the others. */
async function tokensTableOf(file: string): Promise<string | undefined> {
  const { readOutputs, OperatorUsageError } = await import('./aws-operator.ts');
  try {
    return readOutputs(file)[ENV.tokensTable];
  } catch (e) {
    throw e instanceof OperatorUsageError ? new UsageError(e.message) : e;
  }
}

/** The flags `crs token` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
/** What `crs token` does: each one a case of tokenCommand's switch (a word without one does not compile). */
export const TOKEN_ACTIONS = ['issue', 'rotate', 'scope', 'revoke', 'list'] as const;

export const TOKEN_OPTIONS = {
  device: { type: 'string' },
  kind: { type: 'string' },
  ward: { type: 'string', multiple: true },
  patient: { type: 'string', multiple: true },
  backend: { type: 'string', default: 'embedded' },
  data: { type: 'string' },
  table: { type: 'string' },
  outputs: { type: 'string' },
  expires: { type: 'string' },
  overlap: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function tokenCommand(argv: string[], io: Partial<TokenCommandIo> = {}): Promise<number> {
  const { out, err, now, env, ...open } = { ...defaultIo, ...io };
  let opened: OpenTokens | undefined;
  let where = '';
  try {
    const { values, positionals } = parseFlags({
      args: argv,
      allowPositionals: true,
      options: TOKEN_OPTIONS,
    });
    const [action, ...args] = positionals;
    if (values.help || action === 'help') {
      out(TOKEN_USAGE);
      return 0;
    }
    const tokens = async (): Promise<TokenStore> => {
      if (values.backend === 'aws') {
        if (values.data !== undefined)
          throw new UsageError(
            '--data is the embedded data directory; with --backend aws give --table NAME or --outputs FILE',
          );
        // As every operator command (operatorVariables): the flag, then the variable, then the stack's outputs, an
        // empty one passed over (until 2026-12-06 CRS_TOKENS_TABLE set empty refused --outputs FILE: "no token table").
        const table =
          values.table || env[ENV.tokensTable] || (values.outputs ? await tokensTableOf(values.outputs) : undefined);
        if (!table)
          throw new UsageError(
            `no token table: pass --table NAME, set ${ENV.tokensTable}, or give the stack's outputs with --outputs FILE`,
          );
        opened = await open.aws(table);
        where = `DynamoDB table ${table}`;
      } else if (values.backend === 'embedded') {
        if (values.table !== undefined || values.outputs !== undefined)
          throw new UsageError(
            `--${values.table !== undefined ? 'table' : 'outputs'} is for --backend aws (the embedded tokens live in the data directory, --data DIR)`,
          );
        const dir = resolve(values.data ?? DEFAULT_DATA_DIR);
        // Never create a database here: a token issued into a directory no server reads would only confuse.
        if (!existsSync(join(dir, DB_FILE))) {
          throw new UsageError(
            `no crs database in ${dir}: start crs serve once (or give its --data DIR); for an AWS deployment use --backend aws`,
          );
        }
        opened = await open.embedded(dir);
        where = `${dir} (the crs serve data directory)`;
      } else {
        throw new UsageError(`--backend must be embedded or aws (got ${shown(values.backend)})`);
      }
      return opened.tokens;
    };
    /** --kind, --ward, --patient: required kind, checked lists. */
    const scope = (): TokenScope => {
      if (values.kind === undefined)
        throw new UsageError(
          `${action} needs --kind KIND (${DEVICE_KINDS.join(', ')}): what the device is decides what it may send`,
        );
      const c = checkScope({ kind: values.kind, wards: values.ward ?? [], patients: values.patient ?? [] });
      if (!c.ok) throw new UsageError(`--${c.error}`);
      return c.scope;
    };
    // revoke and list act on one TOKEN_ID and on every token: a --device there filtered nothing (the list was every
    // device's, silently).
    const noScopeOptions = () => {
      if (
        values.kind !== undefined ||
        values.ward !== undefined ||
        values.patient !== undefined ||
        values.device !== undefined
      )
        throw new UsageError(
          `${action} takes no --kind, --ward, --patient or --device${action === 'list' ? ' (it lists every token)' : ''}`,
        );
    };
    /** --expires, read at the command's clock: the instant, or none. */
    const expires = (at: Date): string | undefined => {
      if (values.expires === undefined) return undefined;
      const e = expiryOf(values.expires, at);
      if (!e.ok) throw new UsageError(e.error);
      return e.at;
    };
    if (values.expires !== undefined && action !== 'issue' && action !== 'rotate')
      throw new UsageError('--expires is for issue and rotate');
    if (values.overlap !== undefined && action !== 'rotate') throw new UsageError('--overlap is for rotate');
    /** A new token, printed once (as issue and rotate print it). */
    /**
     * What became of a rotated token: expires at `at`; revoked now; revoked by another hand meanwhile; or not ended
     * (its store failed after the new token was stored: still taken as before, until `at` if it had an expiry).
     */
    type Replaced = { tokenId: string } & (
      | { ended: 'expires'; at: string }
      | { ended: 'expired'; at: string }
      | { ended: 'unreadable'; at: string }
      | { ended: 'revoked'; at: string }
      | { ended: 'revoked meanwhile' }
      | { ended: 'not ended'; error: string; at: string | undefined }
    );
    /** A new token, printed once (as issue and rotate print it). */
    const printIssued = (token: string, record: DeviceToken, replaced?: Replaced) => {
      const { kind, wards, patients } = record;
      const expiresAt = record.expiresAt ?? null;
      if (values.json) {
        const old = replaced && {
          tokenId: replaced.tokenId,
          ...(replaced.ended === 'expires' ? { expiresAt: replaced.at } : {}),
          ...(replaced.ended === 'expired' ? { expiresAt: replaced.at, expired: true } : {}),
          ...(replaced.ended === 'unreadable' ? { expiresAt: replaced.at, expiryUnreadable: true } : {}),
          ...(replaced.ended === 'revoked' ? { revokedAt: replaced.at } : {}),
          ...(replaced.ended === 'revoked meanwhile' ? { revokedMeanwhile: true } : {}),
          ...(replaced.ended === 'not ended' ? { notEnded: replaced.error, expiresAt: replaced.at ?? null } : {}),
        };
        out(
          `${JSON.stringify({ token, tokenId: record.tokenId, deviceId: record.deviceId, kind, wards: wards ?? [], patients: patients ?? [], createdAt: record.createdAt, expiresAt, ...(old ? { replaces: old } : {}) })}\n`,
        );
        return;
      }
      const oldLine = !replaced
        ? ''
        : `replaces: ${replaced.tokenId} (${
            replaced.ended === 'expires'
              ? `taken until ${replaced.at}: configure the device before then`
              : replaced.ended === 'expired'
                ? `expired at ${new Date(expiryMs({ expiresAt: replaced.at })).toISOString()}`
                : replaced.ended === 'unreadable'
                  ? `its expiry ${shown(replaced.at)} cannot be read: refused already`
                  : replaced.ended === 'revoked'
                    ? 'revoked now'
                    : replaced.ended === 'revoked meanwhile'
                      ? 'revoked meanwhile'
                      : `not ended: still taken as before${replaced.at ? `, until ${inline(replaced.at)}` : ''}`
          })\n`;
      out(
        `token:    ${token}\ntokenId:  ${record.tokenId}\ndevice:   ${record.deviceId}\nscope:    ${describeScope(record)}\nexpires:  ${expiresAt ?? 'never'}\n${oldLine}hash in:  ${where}\n` +
          'Configure the device with the token now: it is not stored and cannot be shown again.\n' +
          `Revoke it with: crs token revoke ${record.tokenId}${revokeWhere(values)}\n`,
      );
    };
    if (!isOneOf(TOKEN_ACTIONS, action))
      throw new UsageError(action === undefined ? 'token needs an action' : `unknown token action ${shown(action)}`);
    switch (action) {
      case 'issue': {
        if (args.length > 0) throw new UsageError('issue takes no positional arguments; use --device DEVICE_ID');
        const device = values.device;
        if (!device) throw new UsageError('issue needs --device DEVICE_ID');
        if (!DEVICE_ID.test(device))
          throw new UsageError(`--device must be 1-128 ASCII characters, printable, no space (got ${shown(device)})`);
        if (device === BOARD_DEVICE_ID)
          throw new UsageError(
            `--device ${BOARD_DEVICE_ID} is the board's own sender (its End and Resume monitoring): choose another id`,
          );
        const at = now();
        const { token, record } = issueToken(device, at, scope(), expires(at));
        await (await tokens()).put(record);
        printIssued(token, record);
        return 0;
      }
      case 'rotate': {
        if (values.kind !== undefined || values.ward !== undefined || values.patient !== undefined)
          throw new UsageError("rotate takes no --kind, --ward or --patient (the new token has the old one's scope)");
        if (values.device !== undefined)
          throw new UsageError("rotate takes no --device (the new token has the old one's)");
        if (args.length !== 1) throw new UsageError('rotate takes exactly one TOKEN_ID');
        tokenIdCheck(args[0]!);
        const tokenId = args[0]!;
        const overlapMs = parseDuration(values.overlap ?? DEFAULT_OVERLAP);
        if (overlapMs === undefined)
          throw new UsageError(
            `--overlap takes a duration (24h, 7d, 30m; 0: revoke now); got ${shown(values.overlap!)}`,
          );
        const at = now();
        // `never` (rotate only): a new token without expiry, for an old one that had one.
        const expiresGiven = values.expires === 'never' ? null : expires(at);
        const store = await tokens();
        const old = (await store.list()).find((t) => t.tokenId === tokenId && !t.revokedAt);
        if (!old) {
          err(`crs token: no active token ${tokenId} (unknown, or revoked)\n`);
          return 1;
        }
        // Its scope is copied as the server reads it: one it refuses for its scope cannot be copied (mend it first).
        const auth = tokenPrincipal({ ...old, expiresAt: undefined }, at, backendOf(values));
        if (!auth.ok) {
          err(`crs token: ${tokenId} cannot be rotated: ${auth.error}\n`);
          return 1;
        }
        const { kind, wards, patients } = old;
        const scopeOfOld = {
          ...(kind ? { kind } : {}),
          ...(wards ? { wards } : {}),
          ...(patients ? { patients } : {}),
        };
        const expiresAt = expiresGiven === undefined ? sameLifetime(old, at) : (expiresGiven ?? undefined);
        const { token, record } = issueToken(old.deviceId, at, scopeOfOld, expiresAt);
        await store.put(record);
        // The new token is stored first: a rotation cut short leaves the device its old token, never none.
        // An expired one is left as it is (with --overlap 0 revoked): it is refused already, and no end is printed as
        // a time the device still has.
        // The old one names the new one from then on (2026-12-07): a device still sending it, once refused, is told to
        // install the replacement (TOKEN_REPLACED), never to have yet another issued. Linked before it is ended.
        // With the new token's key (its hash) beside its id: the refusal reads the chain of rotations by key.
        const link = () => store.markReplaced(tokenId, record.tokenId, record.createdAt, record.hash);
        if (overlapMs > 0 && tokenExpired(old, at)) {
          const ended = expiryUnreadable(old) ? 'unreadable' : 'expired';
          printIssued(token, record, { tokenId, ended, at: old.expiresAt! });
          // Refused already, whether or not linked: a link not written only leaves the advice as it was.
          return link().then(
            () => 0,
            (e: Error) => {
              err(
                `crs token: ${tokenId} could not be linked to ${record.tokenId} (${inline(`${e.name}: ${e.message}`)}): its device is told to issue a new one; configure it with the new token (printed)\n`,
              );
              return 1;
            },
          );
        }
        const until = overlapMs === 0 ? at.toISOString() : rotatedExpiry(old, at, overlapMs);
        let ended: boolean;
        try {
          await link();
          ended = overlapMs === 0 ? await store.revoke(tokenId, until) : await store.expire(tokenId, until);
        } catch (e) {
          // The new token is stored and taken: printed all the same, or nobody would ever hold it (and a second
          // rotate would make another). The old one is as it was; the operator ends it once the device changed over.
          const error = `${(e as Error).name}: ${(e as Error).message}`;
          printIssued(token, record, { tokenId, ended: 'not ended', error, at: old.expiresAt });
          err(
            `crs token: ${tokenId} could not be ended (${inline(error)}): the new token ${record.tokenId} is issued (printed); once the device has it, end the old one with crs token revoke ${tokenId}${revokeWhere(values)}\n`,
          );
          return 1;
        }
        if (!ended) {
          err(`crs token: ${tokenId} was revoked meanwhile; the new token ${record.tokenId} is issued\n`);
          printIssued(token, record, { tokenId, ended: 'revoked meanwhile' });
        }
        // As the overlap was read (0d is 0 too), never as it was spelled.
        else printIssued(token, record, { tokenId, ended: overlapMs === 0 ? 'revoked' : 'expires', at: until });
        return 0;
      }
      case 'scope': {
        if (args.length !== 1) throw new UsageError('scope takes exactly one TOKEN_ID');
        tokenIdCheck(args[0]!);
        if (values.device !== undefined) throw new UsageError('scope takes no --device (a token keeps its device)');
        const tokenId = args[0]!;
        const s = scope();
        if (await (await tokens()).setScope(tokenId, s)) {
          out(`scope of ${tokenId}: ${describeScope(s)} (in effect at the device's next request)\n`);
          return 0;
        }
        err(`crs token: no active token ${tokenId} (unknown, or revoked)\n`);
        return 1;
      }
      case 'revoke': {
        noScopeOptions();
        if (args.length !== 1) throw new UsageError('revoke takes exactly one TOKEN_ID');
        tokenIdCheck(args[0]!);
        const tokenId = args[0]!;
        if (await (await tokens()).revoke(tokenId, now().toISOString())) {
          out(`revoked ${tokenId}\n`);
          return 0;
        }
        err(`crs token: no active token ${tokenId} (unknown, or already revoked)\n`);
        return 1;
      }
      case 'list': {
        noScopeOptions();
        if (args.length > 0) throw new UsageError('list takes no arguments');
        const at = now();
        const list = await (await tokens()).list();
        // The hash is not secret, but nothing needs it: ids, devices, scopes and dates only.
        const rows = list.map((record) => {
          const { tokenId, deviceId, kind, wards, patients, createdAt, revokedAt, expiresAt } = record;
          // A token the server refuses for what is stored with it (a kind or a scope this version cannot read; an
          // expiry past) is listed as refused, with why: its scope read as the table has it was "every patient".
          // A replaced one is refused naming the replacement its device is told of (the chain followed alike).
          const replacement = refusedAsReplaced(record, at) ? replacementAmong(list, record, at) : undefined;
          const auth = revokedAt ? undefined : tokenPrincipal(record, at, backendOf(values), replacement);
          return {
            tokenId,
            deviceId,
            kind: kind ?? null,
            wards: wards ?? [],
            patients: patients ?? [],
            createdAt,
            revokedAt: revokedAt ?? null,
            expiresAt: expiresAt ?? null,
            // An expiry that cannot be read (a hand edit) is refused, and said so: never listed as expired at a time.
            expired: !revokedAt && !expiryUnreadable(record) && tokenExpired(record, at),
            expiryUnreadable: !revokedAt && expiryUnreadable(record),
            refused: auth && !auth.ok ? auth.error : null,
          };
        });
        if (values.json) out(`${JSON.stringify(rows)}\n`);
        else {
          out(
            'TOKEN ID                              DEVICE                CREATED                   EXPIRES                   STATUS      SCOPE\n',
          );
          // A cell wider than its column (a revoked token's status, a long device id) still ends with two spaces.
          // What the store holds is shown escaped: a hand-edited item can hold anything.
          const cell = (raw: string, width: number) => {
            const text = inline(raw);
            return text.length < width - 1 ? text.padEnd(width) : `${text}  `;
          };
          for (const r of rows) {
            const status = r.revokedAt
              ? `revoked ${r.revokedAt}`
              : r.expired
                ? 'expired'
                : r.expiryUnreadable
                  ? 'unreadable'
                  : r.refused
                    ? 'refused'
                    : 'active';
            // An expired token is listed with its scope (its expiry says why it is refused).
            const scope =
              (r.expired ? null : r.refused) ??
              describeScope({ ...(r.kind ? { kind: r.kind } : {}), wards: r.wards, patients: r.patients });
            out(
              `${cell(r.tokenId, 38)}${cell(r.deviceId, 22)}${cell(r.createdAt, 26)}${cell(r.expiresAt ?? 'never', 26)}${cell(status, 12)}${inline(scope)}\n`,
            );
          }
          const legacy = rows.filter((r) => !r.kind && !r.revokedAt && !r.refused).length;
          if (legacy > 0)
            out(
              `${legacy} active token(s) have no kind (issued before scopes): they may not set therapy, infusion, weight or thresholds; give each one with crs token scope TOKEN_ID --kind KIND${revokeWhere(values)}\n`,
            );
          for (const f of expiryFindings(list, at)) out(`warning: ${expiryFindingText(f, revokeWhere(values))}\n`);
        }
        return 0;
      }
      default:
        return action satisfies never;
    }
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      // Node's own messages quote an unknown option raw: escaped, as every refusal here says what was given.
      err(`crs token: ${inline((e as Error).message)}\n${TOKEN_USAGE}`);
      return 2;
    }
    // AWS or database errors (credentials, region, missing table, a locked file) are the operator's: name them plainly
    // (an AWS error by its name; a plain Error, which is crs's own sentence, by its message alone), with the table on
    // AWS (DynamoDB's "Requested resource not found" names none: a --table typo went unseen).
    const { name, message } = e as Error;
    const about = where.startsWith('DynamoDB table') ? ` (${where})` : '';
    err(`crs token: ${inline(`${name === 'Error' ? message : `${name}: ${message}`}${about}`)}\n`);
    return 1;
  } finally {
    opened?.close();
  }
}
