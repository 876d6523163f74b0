/**
 * Initramfs images for test guests: Debian's static busybox, an /init script, kernel modules (with
 * their dependencies, in load order) and extra files, packed as a gzipped newc cpio by cpio(1).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * How every test guest's /init starts: busybox's applets on PATH, /proc, /sys and /dev mounted,
 * output to the console (the serial port, with console=ttyS0).
 */
export const INIT_PROLOGUE = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /mnt /seed /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
`;

export interface Kernel {
  readonly version: string;
  readonly vmlinuz: string;
}

/** The newest Debian cloud kernel on this machine whose modules are installed. */
export async function findCloudKernel(): Promise<Kernel> {
  const versions = (await readdir('/boot').catch(() => [] as string[]))
    .map((f) => /^vmlinuz-(.+-cloud-amd64)$/.exec(f)?.[1])
    .filter((v): v is string => !!v && existsSync(`/lib/modules/${v}`))
    .sort();
  const version = versions.at(-1);
  if (!version)
    throw new Error('no Debian cloud kernel with modules in /boot (apt-get install linux-image-cloud-amd64)');
  return { version, vmlinuz: `/boot/vmlinuz-${version}` };
}

async function moduleLoadOrder(version: string, names: readonly string[]): Promise<string[]> {
  const order: string[] = [];
  const visit = async (name: string): Promise<void> => {
    if (order.includes(name)) return;
    const { stdout } = await run('modinfo', ['-k', version, '-F', 'depends', name]);
    for (const dep of stdout.trim().split(',').filter(Boolean)) await visit(dep);
    order.push(name);
  };
  for (const name of names) await visit(name);
  return order;
}

/**
 * `init` runs as PID 1 with busybox's applets on PATH after `busybox --install -s`; the modules are
 * in /lib/modules/NAME.ko and their load order in /lib/modules/order. `files` maps paths to
 * executable scripts or data.
 */
export async function buildBusyboxInitramfs(
  kernel: Kernel,
  init: string,
  modules: readonly string[],
  files: Record<string, string> = {},
): Promise<Buffer> {
  if (!existsSync('/bin/busybox')) throw new Error('busybox is not installed (apt-get install busybox-static)');
  const root = await mkdtemp(join(tmpdir(), 'kvt-initramfs-'));
  try {
    for (const dir of ['bin', 'etc', 'usr/bin', 'lib/modules', 'proc', 'sys', 'dev', 'tmp', 'mnt'])
      await mkdir(join(root, dir), { recursive: true });
    await copyFile('/bin/busybox', join(root, 'bin/busybox'));
    await chmod(join(root, 'bin/busybox'), 0o755);
    const order = await moduleLoadOrder(kernel.version, modules);
    for (const name of order) {
      const file = (await run('modinfo', ['-k', kernel.version, '-F', 'filename', name])).stdout.trim();
      if (!file.endsWith('.ko')) throw new Error(`module ${name} is ${file}: compressed modules are not handled here`);
      await copyFile(file, join(root, 'lib/modules', `${name}.ko`));
    }
    await writeFile(join(root, 'lib/modules/order'), order.join('\n') + '\n');
    for (const [path, text] of Object.entries({ init, ...files })) {
      await mkdir(join(root, dirname(path)), { recursive: true });
      await writeFile(join(root, path), text);
      await chmod(join(root, path), text.startsWith('#!') ? 0o755 : 0o644);
    }
    const archive = `${root}.cpio.gz`;
    await run('sh', ['-c', `cd "${root}" && find . | cpio -o -H newc --quiet -R 0:0 | gzip -1 > "${archive}"`]);
    const bytes = await readFile(archive);
    await rm(archive, { force: true });
    return bytes;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
