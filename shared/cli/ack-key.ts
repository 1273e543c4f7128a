// `crs ack-key rotate [--data DIR] [--drop-previous]` and `crs ack-key drop-previous [--data DIR]` (2026-12-06): a
// new acknowledge-link key for crs serve, keeping the one it replaces so that the links already sent work until
// they expire; or none (a key that leaked). A running crs serve reads the files again within ACK_KEY_FILES_CHECK_MS
// (2026-12-06; it was told to restart before). On AWS the same is done with the aws CLI (docs/runbook.md, "Rotating the acknowledge-link key").
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DB_FILE, dataDirLocked } from '#adapters/sqlite/db.ts';
import { ACK_KEY_FILE, ACK_KEY_FILES_CHECK_MS, dropPreviousAckKey, rotateAckKey } from '#hosts/embedded/ack-key.ts';
import { DEFAULT_DATA_DIR } from '#hosts/embedded/embedded.ts';
import { inline, isOneOf, shown, parseFlags } from './flags.ts';

/**
 * What to do on AWS, where the key is a Secrets Manager secret (docs/runbook.md, "Rotating the acknowledge-link key",
 * says the same). Until 2026-12-07 `crs ack-key rotate --backend aws` answered `Unknown option '--backend'` with a
 * usage naming crs serve's files only.
 */
const ON_AWS =
  'on AWS the acknowledge-link key is the AckSigningSecret (stack output AckSecretArn): rotate it with aws secretsmanager put-secret-value --secret-id <AckSecretArn> --secret-string "$(openssl rand -base64 48 | tr -d \'\\n\')" (the old value stays AWSPREVIOUS, taken until the links it signed expire; for a key that leaked, also remove that label): docs/runbook.md, "Rotating the acknowledge-link key"';

export const ACK_KEY_USAGE = `  crs ack-key rotate [--data DIR] [--drop-previous]
      a new key for crs serve's acknowledge links (ack.key); the one it replaces is kept (ack.key.previous), so the
      links already sent work until they expire (paging.ackLinkMinutes). --drop-previous keeps none: for a key that
      leaked (every link sent before stops working). A running crs serve uses it within 2 s, no restart
  crs ack-key drop-previous [--data DIR]
      forget the previous key (it leaked): the links it signed stop working (in crs serve within 2 s)
  ${ON_AWS}
`;

class AckKeyUsageError extends Error {}

/** The flags `crs ack-key` takes, as parsed (test/unit/docs-commands.test.ts checks the docs against them). */
/** What `crs ack-key` does. */
export const ACK_KEY_ACTIONS = ['rotate', 'drop-previous'] as const;

export const ACK_KEY_OPTIONS = {
  /** embedded (the default); aws is refused, saying how the secret is rotated there. */
  backend: { type: 'string' },
  data: { type: 'string' },
  'drop-previous': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function ackKeyCommand(args: string[]): number {
  try {
    // Before the flags are parsed: an operator on AWS adds --outputs too, which would be refused first, unexplained.
    if (args.some((a, i) => a === '--backend=aws' || (a === '--backend' && args[i + 1] === 'aws')))
      throw new AckKeyUsageError(ON_AWS);
    const { values: v, positionals } = parseFlags({
      args,
      allowPositionals: true,
      options: ACK_KEY_OPTIONS,
    });
    if (v.help) {
      process.stdout.write(`usage:\n${ACK_KEY_USAGE}`);
      return 0;
    }
    const [action, ...extra] = positionals;
    if (!isOneOf(ACK_KEY_ACTIONS, action))
      throw new AckKeyUsageError(`ack-key needs rotate or drop-previous (got ${shown(action ?? '')})`);
    if (extra.length > 0) throw new AckKeyUsageError(`ack-key ${action} takes no more arguments`);
    if (v.backend !== undefined && v.backend !== 'embedded')
      throw new AckKeyUsageError('--backend must be embedded (or aws, to be told how its secret is rotated)');
    if (action === 'drop-previous' && v['drop-previous'])
      throw new AckKeyUsageError('--drop-previous is for rotate; drop-previous alone forgets the previous key');
    const dir = resolve(v.data ?? DEFAULT_DATA_DIR);
    // A directory crs serve never ran on gets no key: the wrong --data would otherwise be taken quietly.
    if (!existsSync(join(dir, ACK_KEY_FILE)) && !existsSync(join(dir, DB_FILE)))
      throw new AckKeyUsageError(`no crs data in ${dir} (give the data directory of crs serve with --data DIR)`);
    let said: string;
    if (action === 'rotate') {
      const { keptPrevious } = rotateAckKey(dir, { dropPrevious: v['drop-previous'] === true });
      said = keptPrevious
        ? `new acknowledge-link key in ${dir}; the one it replaces is kept: links already sent work until they expire`
        : `new acknowledge-link key in ${dir}; no previous key kept: links sent before stop working`;
    } else {
      said = dropPreviousAckKey(dir)
        ? `previous acknowledge-link key removed from ${dir}: the links it signed stop working`
        : `no previous acknowledge-link key in ${dir}: nothing to drop`;
    }
    // A running crs serve reads the files again when it signs or verifies a link, at most every few seconds.
    const restart = dataDirLocked(dir)
      ? `crs serve is running on it: in use within ${ACK_KEY_FILES_CHECK_MS / 1000} s, no restart`
      : 'crs serve uses it from its next start';
    process.stdout.write(`${said}\n${restart}\n`);
    return 0;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e instanceof AckKeyUsageError || e.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`crs ack-key: ${inline(e.message)}\nusage:\n${ACK_KEY_USAGE}`);
      return 2;
    }
    process.stderr.write(`crs ack-key: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
    return 1;
  }
}
