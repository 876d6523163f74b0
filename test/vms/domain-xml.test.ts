/** Domain and volume XML from a spec: validated against libvirt's own schemas (virt-xml-validate), and its choices checked. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { domainXml, escapeXml, volumeXml, type DomainSpec } from '../../src/vms/domain-xml.ts';

const run = promisify(execFile);

async function validate(xml: string, schema: 'domain' | 'storagevol' = 'domain'): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kvt-xml-'));
  try {
    await writeFile(join(dir, `${schema}.xml`), xml);
    await run('virt-xml-validate', [join(dir, `${schema}.xml`), schema]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const seedVm: DomainSpec = {
  // The seed's virt-install: 32 GiB, 4 vCPUs, a qcow2 disk, bridge br0, SPICE with a password.
  name: 'vm1.example.com',
  uuid: '6f1c4b1e-0d7a-4a43-9d1c-1b2e3f405162',
  type: 'kvm',
  memoryMiB: 32768,
  vcpus: 4,
  disks: [
    { source: '/vm1/vm1.example.com.qcow2', format: 'qcow2' },
    { source: '/vm1/iso/CentOS-6.4-x86_64-bin-DVD1.iso', format: 'raw', device: 'cdrom' },
  ],
  interfaces: [{ bridge: 'br0', mac: '52:54:00:aa:bb:cc' }],
  bootOrder: ['disk:0', 'disk:1'],
  graphics: { type: 'spice', password: 'mypassword' },
  serial: 'pty',
};

test('the seed VM: valid for libvirt, kvm with the host CPU, disk and cdrom, bridge, SPICE password', async () => {
  const xml = domainXml(seedVm);
  await validate(xml);
  assert.match(xml, /^<domain type='kvm'>/);
  assert.match(xml, /<cpu mode='host-passthrough'\/>/);
  assert.match(xml, /<memory unit='MiB'>32768<\/memory>/);
  assert.match(xml, /<target dev='vda' bus='virtio'\/>[\s\S]*<boot order='1'\/>/);
  assert.match(xml, /device='cdrom'[\s\S]*<target dev='sdb' bus='sata'\/>\s*<readonly\/>\s*<boot order='2'\/>/);
  assert.match(xml, /<source bridge='br0'\/>/);
  assert.match(xml, /<graphics type='spice' autoport='yes' listen='127.0.0.1' passwd='mypassword'\/>/);
  assert.equal(domainXml(seedVm), xml, 'pure: the same spec gives the same XML');
});

test('a TCG UEFI guest network-booting after its disk: OVMF loader and vars, NIC ROM off, serial to a file', async () => {
  const xml = domainXml({
    name: 'e2e-uefi',
    type: 'qemu',
    memoryMiB: 384,
    vcpus: 1,
    firmware: 'uefi',
    disks: [{ source: '/tmp/x.qcow2', format: 'qcow2' }],
    interfaces: [{ bridge: 'kvfbr1', rom: false }],
    bootOrder: ['disk:0', 'net:0'],
    serial: { file: '/tmp/x.log' },
    directBoot: { kernel: '/boot/vmlinuz', initrd: '/boot/initrd.img', cmdline: 'console=ttyS0 root=/dev/vda' },
  });
  await validate(xml);
  assert.match(
    xml,
    /<kernel>\/boot\/vmlinuz<\/kernel>\s*<initrd>\/boot\/initrd\.img<\/initrd>\s*<cmdline>console=ttyS0 root=\/dev\/vda<\/cmdline>/,
  );
  assert.match(xml, /^<domain type='qemu'>/);
  assert.doesNotMatch(xml, /<cpu /, 'TCG keeps its default CPU model');
  assert.match(xml, /machine='q35'/);
  assert.match(xml, /<loader readonly='yes' type='pflash'>\/usr\/share\/OVMF\/OVMF_CODE_4M\.fd<\/loader>/);
  assert.match(xml, /<nvram template='\/usr\/share\/OVMF\/OVMF_VARS_4M\.fd'\/>/);
  assert.match(xml, /<rom enabled='no'\/>\s*<boot order='2'\/>/);
  assert.match(xml, /<serial type='file'><source path='\/tmp\/x\.log' append='on'\/>/);
});

test('values are escaped; bad specs are refused with the reason', async () => {
  const xml = domainXml({ ...seedVm, description: `<script>"&'` });
  assert.match(xml, /<description>&lt;script&gt;&quot;&amp;&apos;<\/description>/);
  await validate(xml);
  assert.equal(escapeXml(`a<b`), 'a&lt;b');
  const refused = (spec: Partial<DomainSpec>, why: RegExp) =>
    assert.throws(() => domainXml({ ...seedVm, ...spec }), why);
  refused({ name: 'bad name' }, /a name is 1–64/);
  refused({ name: "x'/><devices" }, /a name is 1–64/);
  refused({ uuid: 'not-a-uuid' }, /not a lower-case UUID/);
  refused({ memoryMiB: 8 }, /at least 16/);
  refused({ vcpus: 0 }, /vCPUs/);
  refused({ interfaces: [{ bridge: 'br0', network: 'default' }] }, /either a bridge or a network/);
  refused({ interfaces: [{ bridge: 'br0', mac: '52:54:00:AA:BB:CC' }] }, /lower-case MAC/);
  refused({ bootOrder: ['net:3'] }, /boot device net:3 does not exist/);
  refused({ bootOrder: ['disk:0', 'disk:0'] }, /appears twice/);
});

test('volume XML: a new qcow2 disk, a linked clone over its backing file, a raw seed; valid for libvirt', async () => {
  const disk = volumeXml({ name: 'vm1.qcow2', capacityBytes: 10 * 1024 ** 3, format: 'qcow2' });
  assert.match(disk, /<name>vm1\.qcow2<\/name>/);
  assert.match(disk, /<capacity unit='bytes'>10737418240<\/capacity>/);
  assert.match(disk, /<target><format type='qcow2'\/><\/target>/);
  assert.doesNotMatch(disk, /backingStore/);
  await validate(disk, 'storagevol');
  const linked = volumeXml({
    name: 'c1.qcow2',
    capacityBytes: 2n ** 40n,
    format: 'qcow2',
    backingStore: { path: '/var/lib/libvirt/images/tmpl.qcow2', format: 'qcow2' },
  });
  assert.match(linked, /<capacity unit='bytes'>1099511627776<\/capacity>/);
  assert.match(
    linked,
    /<backingStore>\s*<path>\/var\/lib\/libvirt\/images\/tmpl\.qcow2<\/path>\s*<format type='qcow2'\/>\s*<\/backingStore>/,
  );
  await validate(linked, 'storagevol');
  const seed = volumeXml({ name: 'c1-seed.img', capacityBytes: 376_832, format: 'raw' });
  assert.match(seed, /<target><format type='raw'\/><\/target>/);
  await validate(seed, 'storagevol');
});

test('volume XML escapes its name and backing path (the strings built by hand before did not)', async () => {
  const xml = volumeXml({
    name: `a<b&c'd"e.qcow2`,
    capacityBytes: 1024,
    format: 'qcow2',
    backingStore: { path: `/pool/</path><x y='1'/>&.qcow2`, format: 'qcow2' },
  });
  assert.match(xml, /<name>a&lt;b&amp;c&apos;d&quot;e\.qcow2<\/name>/);
  assert.match(xml, /<path>\/pool\/&lt;\/path&gt;&lt;x y=&apos;1&apos;\/&gt;&amp;\.qcow2<\/path>/);
  assert.equal((xml.match(/</g) ?? []).length, (xml.match(/>/g) ?? []).length, 'no markup from the values');
  await validate(xml, 'storagevol');
  assert.throws(() => volumeXml({ name: 'v', capacityBytes: 1.5, format: 'raw' }), /whole number of bytes/);
  assert.throws(() => volumeXml({ name: 'v', capacityBytes: -1n, format: 'raw' }), /whole number of bytes/);
});
