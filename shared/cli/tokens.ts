// `crs token issue --device ID | revoke TOKEN_ID | list`: device bearer tokens in the deployed stack's DynamoDB
// token table (`--table`, or CRS_TOKENS_TABLE; the stack prints it as TokensTableName). The SDK honours
// AWS_ENDPOINT_URL, so the same command works against a local emulator.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { parseArgs } from 'node:util';
import { issueToken } from '../app/auth.ts';
import { DynamoTokenStore } from '../adapters/aws/dynamo-token-store.ts';
import { ENV } from '../adapters/aws/env.ts';
import type { TokenStore } from '../ports.ts';

export const TOKEN_USAGE = `usage:
  crs token issue --device DEVICE_ID [--table NAME] [--json]   issue a token (shown once; only its hash is stored)
  crs token revoke TOKEN_ID [--table NAME]                      revoke a token: the device gets 403 from then on
  crs token list [--table NAME] [--json]                        list tokens (ids, devices, dates; never the tokens)
  NAME defaults to $${ENV.tokensTable}; AWS_REGION, AWS credentials and AWS_ENDPOINT_URL apply as for the AWS CLI.
`;

export interface TokenCommandIo {
  out: (text: string) => void;
  err: (text: string) => void;
  now: () => Date;
  /** The token store for a table name (the DynamoDB one by default). */
  store: (table: string) => TokenStore;
  env: NodeJS.ProcessEnv;
}

const defaultIo: TokenCommandIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  now: () => new Date(),
  store: (table) => new DynamoTokenStore(new DynamoDBClient({}), table),
  env: process.env,
};

class UsageError extends Error {}

const DEVICE_ID = /^[\x21-\x7e]{1,128}$/;

export async function tokenCommand(argv: string[], io: Partial<TokenCommandIo> = {}): Promise<number> {
  const { out, err, now, store, env } = { ...defaultIo, ...io };
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { device: { type: 'string' }, table: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' } },
    });
    const [action, ...args] = positionals;
    if (values.help || action === 'help') {
      out(TOKEN_USAGE);
      return 0;
    }
    const table = values.table ?? env[ENV.tokensTable];
    const tokens = () => {
      if (!table) throw new UsageError(`no token table: pass --table NAME or set ${ENV.tokensTable}`);
      return store(table);
    };
    switch (action) {
      case 'issue': {
        if (args.length > 0) throw new UsageError('issue takes no positional arguments; use --device DEVICE_ID');
        const device = values.device;
        if (!device) throw new UsageError('issue needs --device DEVICE_ID');
        if (!DEVICE_ID.test(device)) throw new UsageError(`--device must be 1-128 printable characters without spaces (got ${JSON.stringify(device)})`);
        const { token, record } = issueToken(device, now());
        await tokens().put(record);
        if (values.json) out(`${JSON.stringify({ token, tokenId: record.tokenId, deviceId: record.deviceId, createdAt: record.createdAt })}\n`);
        else {
          out(
            `token:    ${token}\ntokenId:  ${record.tokenId}\ndevice:   ${record.deviceId}\n` +
              'Configure the device with the token now: it is not stored and cannot be shown again.\n' +
              `Revoke it with: crs token revoke ${record.tokenId}\n`,
          );
        }
        return 0;
      }
      case 'revoke': {
        if (args.length !== 1) throw new UsageError('revoke takes exactly one TOKEN_ID');
        const tokenId = args[0]!;
        if (await tokens().revoke(tokenId, now().toISOString())) {
          out(`revoked ${tokenId}\n`);
          return 0;
        }
        err(`crs token: no active token ${tokenId} (unknown, or already revoked)\n`);
        return 1;
      }
      case 'list': {
        if (args.length > 0) throw new UsageError('list takes no arguments');
        const list = await tokens().list();
        // The hash is not secret, but nothing needs it: ids, devices and dates only.
        const rows = list.map(({ tokenId, deviceId, createdAt, revokedAt }) => ({ tokenId, deviceId, createdAt, revokedAt: revokedAt ?? null }));
        if (values.json) out(`${JSON.stringify(rows)}\n`);
        else {
          out('TOKEN ID                              DEVICE                CREATED                   STATUS\n');
          for (const r of rows) {
            out(`${r.tokenId.padEnd(38)}${r.deviceId.padEnd(22)}${r.createdAt.padEnd(26)}${r.revokedAt ? `revoked ${r.revokedAt}` : 'active'}\n`);
          }
        }
        return 0;
      }
      default:
        throw new UsageError(action === undefined ? 'token needs an action' : `unknown token action "${action}"`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err(`crs token: ${(e as Error).message}\n${TOKEN_USAGE}`);
      return 2;
    }
    // AWS errors (credentials, region, missing table) are for the operator to fix: name them plainly.
    err(`crs token: ${(e as Error).name}: ${(e as Error).message}\n`);
    return 1;
  }
}
