/**
 * UEFI HTTP boot (arch 16, vendor class HTTPClient): the URL the DHCP role offers exists — the
 * boot HTTP role answers it with the iPXE EFI binary. Real datagrams and curl, in namespaces.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { buildClientMessage } from '../../src/protocols/dhcp4/client-message.ts';
import { text } from '../../src/protocols/dhcp4/option-codecs.ts';
import { OptionCode } from '../../src/protocols/dhcp4/options.ts';
import { decodePacket, encodePacket, messageType, MessageType } from '../../src/protocols/dhcp4/packet.ts';
import type { ProbePlan, ProbeReceived } from '../helpers/dhcp-probe.ts';
import { createNamespacePair, type NamespacePair } from '../helpers/netns.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';

const PROBE = fileURLToPath(new URL('../helpers/dhcp-probe.ts', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'kvt-httpboot-'));
let net: NamespacePair;
let server: ServerProcess;

before(async () => {
  net = await createNamespacePair('hbt');
  server = await startServer(
    [
      '--roles',
      'api,dhcp,http',
      '--http-listen',
      `${net.server.ip}:8081`,
      '--data-dir',
      join(work, 'data'),
      '--dhcp-server-id',
      net.server.ip,
      '--log-level',
      'warn',
    ],
    {},
    60_000,
    { netns: net.server.name },
  );
  const s = net.subnet;
  await net.server.exec('curl', [
    '-sS',
    '-X',
    'POST',
    '-H',
    'content-type: application/yaml',
    '--data-binary',
    `sites:\n  - name: lab\n    networks:\n      - { name: lab, cidr: ${s}.0/24, dynamicRange: { start: ${s}.100, end: ${s}.120 } }\n`,
    `${server.url}/api/v1/import/site`,
  ]);
});
after(async () => {
  await server?.kill();
  await net?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

test('arch 16 HTTPClient is offered an http:// URL that answers 200 with ipxe.efi', { timeout: 120_000 }, async () => {
  const discover = buildClientMessage(MessageType.Discover, {
    mac: '52:54:00:79:00:01',
    vendorClass: 'HTTPClient:Arch:00016:UNDI:003001',
    arch: 16,
  });
  const plan: ProbePlan = {
    sends: [{ b64: encodePacket(discover).toString('base64'), to: net.server.ip }],
    listenMs: 1000,
  };
  const { stdout } = await net.client.exec(process.execPath, ['--import', 'tsx', PROBE, JSON.stringify(plan)]);
  const offer = stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => decodePacket(Buffer.from((JSON.parse(l) as ProbeReceived).b64, 'base64')))
    .find((p) => p.op === 2)!;
  assert.equal(messageType(offer), MessageType.Offer);
  assert.equal(text.decode(offer.options.get(OptionCode.VendorClass)!), 'HTTPClient');
  const url = text.decode(offer.options.get(OptionCode.BootFileName)!);
  assert.equal(url, `http://${net.server.ip}:8081/ipxe.efi`);
  const out = join(work, 'ipxe.efi');
  const { stdout: status } = await net.client.exec('curl', ['-sS', '-o', out, '-w', '%{http_code}', url]);
  assert.equal(status, '200');
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  assert.equal(sha(readFileSync(out)), sha(readFileSync('/usr/lib/ipxe/ipxe.efi')), 'the iPXE EFI binary');
});
