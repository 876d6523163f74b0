/**
 * Libvirt domain and storage volume XML from a plain description: the one place kvmfleet writes
 * libvirt XML (the `virt-install` job, clones, the e2e guests). Pure: same spec, same XML. Every value
 * is escaped. Boot order is per device (<boot order='N'/>), which libvirt prefers over <os><boot dev=…/>.
 */
import type { DomainType } from './domain-type.ts';

export type Firmware = 'bios' | 'uefi';

export interface DiskSpec {
  /** Path of the image (or ISO) on the hypervisor. */
  readonly source: string;
  readonly format: 'qcow2' | 'raw';
  readonly device?: 'disk' | 'cdrom';
  readonly bus?: 'virtio' | 'sata' | 'scsi';
  readonly readonly?: boolean;
}

export interface InterfaceSpec {
  /** A host bridge (e.g. br0) or a libvirt network by name: exactly one. */
  readonly bridge?: string;
  readonly network?: string;
  readonly mac?: string;
  readonly model?: 'virtio' | 'e1000';
  /** false: no option ROM (under UEFI the firmware's own PXE then boots, not the NIC's iPXE ROM). */
  readonly rom?: boolean;
}

export interface DomainSpec {
  readonly name: string;
  readonly uuid?: string;
  readonly type: DomainType;
  readonly memoryMiB: number;
  readonly vcpus: number;
  /** Default: pc (i440fx) for BIOS, q35 for UEFI. */
  readonly machine?: string;
  readonly firmware?: Firmware;
  /** UEFI: OVMF code and variables template (Debian's ovmf package paths by default). */
  readonly uefi?: { readonly loader: string; readonly varsTemplate: string };
  readonly disks?: readonly DiskSpec[];
  readonly interfaces?: readonly InterfaceSpec[];
  /** Devices in boot order, e.g. ['disk:0', 'net:0'] = first disk, then first NIC (the seed's BIOS order). */
  readonly bootOrder?: readonly BootDevice[];
  /** Serial console: to a file (appended), or a pty for `virsh console`. */
  readonly serial?: { readonly file: string } | 'pty';
  readonly graphics?: { readonly type: 'vnc' | 'spice'; readonly password?: string; readonly listen?: string };
  /** Boot a kernel (and initrd) from the hypervisor's file system instead of a disk's boot loader. */
  readonly directBoot?: { readonly kernel: string; readonly initrd?: string; readonly cmdline?: string };
  readonly description?: string;
}

export type BootDevice = `disk:${number}` | `net:${number}`;

export const OVMF_DEFAULTS = {
  loader: '/usr/share/OVMF/OVMF_CODE_4M.fd',
  varsTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd',
} as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function escapeXml(value: string): string {
  return value.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );
}

function checkSpec(spec: DomainSpec): void {
  const bad = (why: string) => {
    throw new Error(`domain ${JSON.stringify(spec.name)}: ${why}`);
  };
  if (!NAME.test(spec.name)) bad('a name is 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  if (spec.uuid !== undefined && !UUID.test(spec.uuid)) bad(`"${spec.uuid}" is not a lower-case UUID`);
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 16)
    bad('memory must be a whole number of MiB, at least 16');
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1 || spec.vcpus > 4096) bad('vCPUs must be 1–4096');
  for (const nic of spec.interfaces ?? []) {
    if (!!nic.bridge === !!nic.network) bad('an interface names either a bridge or a network');
    if (nic.mac !== undefined && !MAC.test(nic.mac)) bad(`"${nic.mac}" is not a lower-case MAC address`);
  }
  for (const device of spec.bootOrder ?? []) {
    const [kind, index] = device.split(':') as [string, string];
    const list = kind === 'disk' ? spec.disks : spec.interfaces;
    if (!list || Number(index) >= list.length) bad(`boot device ${device} does not exist`);
  }
  if (new Set(spec.bootOrder).size !== (spec.bootOrder ?? []).length) bad('a device appears twice in the boot order');
}

export function domainXml(spec: DomainSpec): string {
  checkSpec(spec);
  const firmware = spec.firmware ?? 'bios';
  const machine = spec.machine ?? (firmware === 'uefi' ? 'q35' : 'pc');
  const bootIndex = (device: BootDevice) => {
    const i = (spec.bootOrder ?? []).indexOf(device);
    return i < 0 ? [] : [`      <boot order='${i + 1}'/>`];
  };
  const diskLetters = 'abcdefghijklmnopqrstuvwxyz';
  const lines: string[] = [
    `<domain type='${spec.type}'>`,
    `  <name>${escapeXml(spec.name)}</name>`,
    ...(spec.uuid ? [`  <uuid>${spec.uuid}</uuid>`] : []),
    ...(spec.description ? [`  <description>${escapeXml(spec.description)}</description>`] : []),
    `  <memory unit='MiB'>${spec.memoryMiB}</memory>`,
    `  <vcpu>${spec.vcpus}</vcpu>`,
    '  <os>',
    `    <type arch='x86_64' machine='${escapeXml(machine)}'>hvm</type>`,
    ...(firmware === 'uefi'
      ? [
          `    <loader readonly='yes' type='pflash'>${escapeXml((spec.uefi ?? OVMF_DEFAULTS).loader)}</loader>`,
          `    <nvram template='${escapeXml((spec.uefi ?? OVMF_DEFAULTS).varsTemplate)}'/>`,
        ]
      : []),
    ...(spec.directBoot
      ? [
          `    <kernel>${escapeXml(spec.directBoot.kernel)}</kernel>`,
          ...(spec.directBoot.initrd ? [`    <initrd>${escapeXml(spec.directBoot.initrd)}</initrd>`] : []),
          ...(spec.directBoot.cmdline ? [`    <cmdline>${escapeXml(spec.directBoot.cmdline)}</cmdline>`] : []),
        ]
      : []),
    '  </os>',
    '  <features><acpi/><apic/></features>',
    // KVM guests get the host's CPU model; TCG emulates its default model.
    ...(spec.type === 'kvm' ? ["  <cpu mode='host-passthrough'/>"] : []),
    '  <on_poweroff>destroy</on_poweroff>',
    '  <on_reboot>restart</on_reboot>',
    '  <on_crash>destroy</on_crash>',
    '  <devices>',
  ];
  (spec.disks ?? []).forEach((disk, i) => {
    const bus = disk.bus ?? (disk.device === 'cdrom' ? 'sata' : 'virtio');
    const dev = `${bus === 'virtio' ? 'vd' : 'sd'}${diskLetters[i]}`;
    lines.push(
      `    <disk type='file' device='${disk.device ?? 'disk'}'>`,
      `      <driver name='qemu' type='${disk.format}'/>`,
      `      <source file='${escapeXml(disk.source)}'/>`,
      `      <target dev='${dev}' bus='${bus}'/>`,
      ...(disk.readonly || disk.device === 'cdrom' ? ['      <readonly/>'] : []),
      ...bootIndex(`disk:${i}`),
      '    </disk>',
    );
  });
  (spec.interfaces ?? []).forEach((nic, i) => {
    lines.push(
      nic.bridge ? "    <interface type='bridge'>" : "    <interface type='network'>",
      nic.bridge
        ? `      <source bridge='${escapeXml(nic.bridge)}'/>`
        : `      <source network='${escapeXml(nic.network!)}'/>`,
      ...(nic.mac ? [`      <mac address='${nic.mac}'/>`] : []),
      `      <model type='${nic.model ?? 'virtio'}'/>`,
      ...(nic.rom === false ? ["      <rom enabled='no'/>"] : []),
      ...bootIndex(`net:${i}`),
      '    </interface>',
    );
  });
  if (spec.serial === 'pty')
    lines.push(
      "    <serial type='pty'><target port='0'/></serial>",
      "    <console type='pty'><target type='serial' port='0'/></console>",
    );
  else if (spec.serial)
    lines.push(
      `    <serial type='file'><source path='${escapeXml(spec.serial.file)}' append='on'/><target port='0'/></serial>`,
    );
  if (spec.graphics) {
    const { type, password, listen } = spec.graphics;
    lines.push(
      `    <graphics type='${type}' autoport='yes' listen='${escapeXml(listen ?? '127.0.0.1')}'${password ? ` passwd='${escapeXml(password)}'` : ''}/>`,
    );
  }
  lines.push("    <memballoon model='virtio'/>", '  </devices>', '</domain>', '');
  return lines.join('\n');
}

export interface VolumeSpec {
  /** The volume's name in its storage pool, e.g. "vm1.qcow2". */
  readonly name: string;
  readonly capacityBytes: number | bigint;
  readonly format: 'qcow2' | 'raw';
  /** A copy-on-write volume reading through this one (a linked clone's disk over its template's). */
  readonly backingStore?: { readonly path: string; readonly format: 'qcow2' | 'raw' };
}

/** A storage volume for virStorageVolCreateXML / virStorageVolCreateXMLFrom. */
export function volumeXml(spec: VolumeSpec): string {
  const bytes = spec.capacityBytes;
  if (typeof bytes === 'number' ? !Number.isSafeInteger(bytes) || bytes < 0 : bytes < 0n)
    throw new Error(`volume ${JSON.stringify(spec.name)}: capacity must be a whole number of bytes`);
  const backing = spec.backingStore
    ? [
        '  <backingStore>',
        `    <path>${escapeXml(spec.backingStore.path)}</path>`,
        `    <format type='${spec.backingStore.format}'/>`,
        '  </backingStore>',
      ]
    : [];
  return [
    '<volume>',
    `  <name>${escapeXml(spec.name)}</name>`,
    `  <capacity unit='bytes'>${bytes}</capacity>`,
    `  <target><format type='${spec.format}'/></target>`,
    ...backing,
    '</volume>',
    '',
  ].join('\n');
}
