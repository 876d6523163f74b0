/**
 * A TEST OS for VM tests (a real guest, not a real distribution): Debian's cloud kernel booted
 * directly by libvirt, a busybox initramfs, and a qcow2 disk with an ext4 root that looks enough
 * like Linux for virt-sysprep (/etc/os-release, /etc/hostname, /etc/machine-id, logs, SSH host keys).
 * At boot it does what cloud-init and systemd would do for a clone: reads a NoCloud seed (a FAT disk
 * labelled cidata) and takes its local-hostname; makes a machine-id if the disk has none (sealed);
 * then prints "kvmfleet-test-os: HOSTNAME login:" with its machine-id on the serial console. It
 * powers off on an ACPI power-button press (busybox acpid), so `shutdown` works as with a real OS.
 */
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildBusyboxInitramfs, INIT_PROLOGUE, type Kernel } from './busybox-initramfs.ts';

const run = promisify(execFile);

export const TEST_OS_LOGIN = /kvmfleet-test-os: (\S+) login: machine-id=(\w*)/;

const INIT = `${INIT_PROLOGUE}say() { echo "kvmfleet-test-os: $*"; }
for m in $(cat /lib/modules/order); do insmod "/lib/modules/$m.ko" 2>/dev/null; done
for i in $(seq 1 50); do [ -b /dev/vda ] && break; sleep 0.2; done
mount -t ext4 /dev/vda /mnt || { say "FAILED: no root file system on /dev/vda"; poweroff -f; }
name=$(cat /mnt/etc/hostname 2>/dev/null)
for d in /dev/vd[b-z]; do
  [ -b "$d" ] || continue
  if mount -t vfat -o ro "$d" /seed 2>/dev/null; then
    if [ -f /seed/meta-data ]; then
      seeded=$(sed -n 's/^local-hostname: *"\\{0,1\\}\\([^"]*\\)"\\{0,1\\} *$/\\1/p' /seed/meta-data)
      [ -n "$seeded" ] && { name="$seeded"; echo "$name" > /mnt/etc/hostname; say "hostname from the NoCloud seed on $d"; }
    fi
    umount /seed
  fi
done
hostname "\${name:-localhost}"
id=$(tr -d '\\n' < /mnt/etc/machine-id 2>/dev/null)
if [ -z "$id" ]; then id=$(tr -d '-' < /proc/sys/kernel/random/uuid); echo "$id" > /mnt/etc/machine-id; say "new machine-id"; fi
echo "booted $(date)" >> /mnt/var/log/messages
sync
acpid -d -c /etc/acpi -a /etc/acpid.conf >/dev/null 2>&1 &
say "\${name:-localhost} login: machine-id=$id"
while :; do sleep 3600; done
`;

/** busybox acpid: the power button runs /etc/acpi/power (unmount, power off). */
const ACPI_CONF = 'PWRF power\n';
const ACPI_POWER =
  '#!/bin/sh\necho "kvmfleet-test-os: power button: powering off"\nsync\numount /mnt 2>/dev/null\npoweroff -f\n';

export interface TestOs {
  readonly kernel: string;
  readonly initrd: string;
  readonly cmdline: string;
}

/** Writes the kernel and initramfs into `dir` (readable by QEMU) and returns the direct-boot paths. */
export async function buildTestOsBoot(kernel: Kernel, dir: string): Promise<TestOs> {
  await mkdir(dir, { recursive: true });
  const vmlinuz = join(dir, 'test-os-vmlinuz');
  const initrd = join(dir, 'test-os-initrd.img');
  await copyFile(kernel.vmlinuz, vmlinuz);
  await writeFile(
    initrd,
    await buildBusyboxInitramfs(
      kernel,
      INIT,
      ['virtio_pci', 'virtio_blk', 'virtio_net', 'vfat', 'nls_cp437', 'nls_ascii', 'evdev', 'button'],
      { 'etc/acpid.conf': ACPI_CONF, 'etc/acpi/power': ACPI_POWER },
    ),
  );
  await chmod(vmlinuz, 0o644);
  await chmod(initrd, 0o644);
  return { kernel: vmlinuz, initrd, cmdline: 'console=ttyS0,115200 panic=-1 quiet' };
}

/** A qcow2 disk image with the test OS's root file system, with a machine identity to be sealed away. */
export async function buildTestOsDisk(path: string, hostname = 'template-source'): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kvt-osroot-'));
  try {
    const root = join(dir, 'root');
    for (const d of ['bin', 'sbin', 'etc/ssh', 'dev', 'proc', 'sys', 'tmp', 'root', 'var/log', 'usr/bin'])
      await mkdir(join(root, d), { recursive: true });
    await copyFile('/bin/busybox', join(root, 'bin/busybox'));
    await writeFile(
      join(root, 'etc/os-release'),
      'NAME="kvmfleet test OS"\nID=kvmfleet-test\nVERSION_ID=1\nPRETTY_NAME="kvmfleet test OS 1"\n',
    );
    await writeFile(join(root, 'etc/hostname'), `${hostname}\n`);
    await writeFile(join(root, 'etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
    await writeFile(join(root, 'etc/fstab'), '/dev/vda / ext4 defaults 0 1\n');
    await writeFile(join(root, 'etc/ssh/ssh_host_ed25519_key'), 'not a real key: it must be gone after sealing\n');
    await writeFile(join(root, 'var/log/messages'), 'a log line that sealing removes\n');
    await writeFile(join(root, 'sbin/init'), '#!/bin/busybox sh\nexec /bin/busybox sh\n');
    await chmod(join(root, 'sbin/init'), 0o755);
    const raw = join(dir, 'root.img');
    await run('truncate', ['-s', '64M', raw]);
    await run('mkfs.ext4', ['-q', '-F', '-L', 'root', '-d', root, raw]);
    await run('qemu-img', ['convert', '-q', '-O', 'qcow2', raw, path]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
