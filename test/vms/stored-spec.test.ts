/** The domain spec read back from the store's JSON: every field a DomainSpec has round-trips; anything else is refused by field. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DomainSpec } from '../../src/vms/domain-xml.ts';
import { readDomainSpec } from '../../src/vms/stored-spec.ts';

const full: DomainSpec = {
  name: 'vm1.example.com',
  uuid: '6f1c4b1e-0d7a-4a43-9d1c-1b2e3f405162',
  type: 'qemu',
  memoryMiB: 2048,
  vcpus: 2,
  machine: 'q35',
  firmware: 'uefi',
  uefi: { loader: '/usr/share/OVMF/OVMF_CODE_4M.fd', varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
  disks: [
    { source: '/pool/vm1.qcow2', format: 'qcow2', bus: 'virtio' },
    { source: '/pool/seed.img', format: 'raw', readonly: true },
    { source: '/iso/os.iso', format: 'raw', device: 'cdrom', bus: 'sata' },
  ],
  interfaces: [
    { bridge: 'br0', mac: '52:54:00:aa:bb:cc', model: 'virtio', rom: false },
    { network: 'default', model: 'e1000' },
  ],
  bootOrder: ['disk:0', 'net:1', 'disk:2'],
  serial: { file: '/var/log/vm1.serial.log' },
  graphics: { type: 'spice', password: 'secret', listen: '0.0.0.0' },
  directBoot: { kernel: '/boot/vmlinuz', initrd: '/boot/initrd.img', cmdline: 'console=ttyS0' },
  description: 'kvmfleet VM (rhel9)',
};

const stored = (spec: unknown): unknown => JSON.parse(JSON.stringify(spec));

test('every field of a spec comes back as it was stored', () => {
  assert.deepEqual(readDomainSpec(stored(full), 'VM vm1'), full);
  const minimal: DomainSpec = { name: 'm', type: 'kvm', memoryMiB: 512, vcpus: 1, serial: 'pty' };
  assert.deepEqual(readDomainSpec(stored(minimal), 'VM m'), minimal);
});

test('a spec missing a field or with one of the wrong kind is refused, naming the field', () => {
  const refused = (value: unknown, why: RegExp) => assert.throws(() => readDomainSpec(value, 'template "t1"'), why);
  refused({}, /the stored domain spec of template "t1" is unusable: spec\.name is not a string/);
  assert.throws(() => readDomainSpec({}, 'VM v'), { code: 'KVMF_ERR_INTERNAL' });
  refused(null, /spec is not an object/);
  refused([full], /spec is not an object/);
  refused({ ...full, type: 'xen' }, /spec\.type is not one of kvm, qemu/);
  refused({ ...full, memoryMiB: '2048' }, /spec\.memoryMiB is not a whole number/);
  refused({ ...full, vcpus: 1.5 }, /spec\.vcpus is not a whole number/);
  refused({ ...full, disks: [full.disks![0], { source: '/x', format: 'vmdk' }] }, /spec\.disks\[1\]\.format/);
  refused({ ...full, disks: {} }, /spec\.disks is not a list/);
  refused({ ...full, interfaces: [{ bridge: 7 }] }, /spec\.interfaces\[0\]\.bridge is not a string/);
  refused({ ...full, interfaces: [{ rom: 'no' }] }, /spec\.interfaces\[0\]\.rom is not true or false/);
  refused({ ...full, bootOrder: ['cdrom:0'] }, /spec\.bootOrder\[0\] is not a boot device/);
  refused({ ...full, serial: 'file' }, /spec\.serial is not an object/);
  refused({ ...full, graphics: { type: 'rdp' } }, /spec\.graphics\.type is not one of vnc, spice/);
  refused({ ...full, directBoot: { initrd: '/i' } }, /spec\.directBoot\.kernel is not a string/);
  refused({ ...full, uefi: { loader: '/l' } }, /spec\.uefi\.varsTemplate is not a string/);
});
