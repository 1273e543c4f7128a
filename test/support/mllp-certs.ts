// Certificates for MLLP over TLS, made by openssl (P-256 keys, valid for two days) in a fresh directory: a CA, the
// listener's certificate (localhost, 127.0.0.1) and devices' certificates signed by it, and a second CA's device.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MllpTls } from '#hosts/mllp-tls.ts';

export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  /** The CA that signs the listener's and the devices' certificates. */
  ca: string;
  listener: CertFiles;
  /** A device certificate of the CA whose subject CN is `cn` (none: a subject without CN). */
  device(cn: string | undefined): CertFiles;
  /** A device certificate (CN `cn`) of another CA, the listener does not trust. */
  stranger(cn: string): CertFiles;
  /** The files read, as the options give them: `--mllp-tls-*` of the listener, or of a device (with the CA). */
  read(files: CertFiles): MllpTls;
}

const openssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
/** A new P-256 key in `name`.key, unencrypted, for `openssl req`. */
const newKey = (name: string) => [
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:prime256v1',
  '-nodes',
  '-keyout',
  `${name}.key`,
];

function newCa(dir: string, name: string): string {
  openssl(dir, ['req', '-x509', ...newKey(name), '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`]);
  return name;
}

function signed(dir: string, ca: string, name: string, subject: string, ext: string): CertFiles {
  openssl(dir, ['req', ...newKey(name), '-out', `${name}.csr`, '-subj', subject]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'crs-mllp-tls-'));
  const ca = newCa(dir, 'hospital-ca');
  const other = newCa(dir, 'other-ca');
  const listener = signed(
    dir,
    ca,
    'listener',
    '/CN=localhost',
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  let n = 0;
  const client = (issuer: string, subject: string) =>
    signed(dir, issuer, `device-${++n}`, subject, 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: join(dir, `${ca}.pem`),
    listener,
    device: (cn) => client(ca, cn === undefined ? '/O=Hospital/OU=no device' : `/CN=${cn}`),
    stranger: (cn) => client(other, `/CN=${cn}`),
    read: (files) => ({
      cert: readFileSync(files.cert),
      key: readFileSync(files.key),
      ca: readFileSync(join(dir, `${ca}.pem`)),
    }),
  };
}
