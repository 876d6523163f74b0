/**
 * Throwaway TLS material for tests, made by openssl: a CA, and a server certificate it signs for
 * 127.0.0.1 (subjectAltName IP, as a BMC reached by address has). P-256 keys: quick to make.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  readonly dir: string;
  /** The CA certificate (PEM) and its path: what a client is told to trust. */
  readonly caPem: string;
  readonly caFile: string;
  /** A server certificate and key signed by this CA for the given IP. */
  serverCert(ip: string): { cert: string; key: string };
  remove(): void;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });

export function makeTestCa(name: string): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'kvt-ca-'));
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    caKey,
    '-out',
    caFile,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  let n = 0;
  return {
    dir,
    caFile,
    caPem: readFileSync(caFile, 'utf8'),
    serverCert(ip) {
      n += 1;
      const key = join(dir, `server${n}.key`);
      const csr = join(dir, `server${n}.csr`);
      const cert = join(dir, `server${n}.pem`);
      const ext = join(dir, `server${n}.ext`);
      openssl([
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        csr,
        '-subj',
        `/CN=${ip}`,
      ]);
      writeFileSync(
        ext,
        `subjectAltName=IP:${ip}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`,
      );
      openssl([
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        caFile,
        '-CAkey',
        caKey,
        '-CAcreateserial',
        '-out',
        cert,
        '-days',
        '2',
        '-extfile',
        ext,
      ]);
      return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
