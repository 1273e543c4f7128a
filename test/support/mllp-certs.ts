// Certificates for MLLP over TLS, made by openssl (P-256 keys, valid for two days) in a fresh directory: a CA, the
// listener's certificate (localhost, 127.0.0.1) and devices' certificates signed by it, and a second CA's device;
// the CA's certificate revocation list (CRL), by `openssl ca -revoke` and `openssl ca -gencrl`.
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
  /** A device certificate of the CA with this subject as openssl writes it (`/CN=a/CN=b`). */
  subject(subject: string): CertFiles;
  /** A device certificate (CN `cn`) of another CA, the listener does not trust. */
  stranger(cn: string): CertFiles;
  /** These certificates revoked: the file of the CA's CRL (PEM, valid two days) naming them and those before. */
  revoke(...files: CertFiles[]): string;
  /** The files read, as the options give them: `--mllp-tls-*` of the listener, or of a device (with the CA). */
  read(files: CertFiles, crl?: string): MllpTls;
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
  openssl(dir, ['req', ...newKey(name), '-out', `${name}.csr`, '-subj', subject, '-multivalue-rdn']);
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
  // openssl ca's database of the revoked certificates, and its settings for a CRL of two days.
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'crlnumber'), '01\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    `[ca]\ndefault_ca = hospital\n[hospital]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\ncertificate = ${ca}.pem\nprivate_key = ${ca}.key\n`,
  );
  let crls = 0;
  return {
    dir,
    ca: join(dir, `${ca}.pem`),
    listener,
    device: (cn) => client(ca, cn === undefined ? '/O=Hospital/OU=no device' : `/CN=${cn}`),
    subject: (subject) => client(ca, subject),
    stranger: (cn) => client(other, `/CN=${cn}`),
    revoke: (...files) => {
      for (const f of files) openssl(dir, ['ca', '-config', 'ca.cnf', '-revoke', f.cert]);
      const crl = join(dir, `crl-${++crls}.pem`);
      openssl(dir, ['ca', '-config', 'ca.cnf', '-gencrl', '-out', crl]);
      return crl;
    },
    read: (files, crl) => ({
      cert: readFileSync(files.cert),
      key: readFileSync(files.key),
      ca: readFileSync(join(dir, `${ca}.pem`)),
      ...(crl ? { crl: readFileSync(crl) } : {}),
    }),
  };
}
