/**
 * The NoCloud seed as a disk image: a FAT file system labelled "cidata" holding meta-data,
 * user-data and network-config (what cloud-init looks for). Made with dosfstools and mtools, then
 * uploaded to the hypervisor's storage pool through libvirt, so it works for remote hypervisors too.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SeedFiles } from './cloud-init.ts';

const run = promisify(execFile);
const SEED_KIB = 1024;

export async function buildSeedImage(files: SeedFiles): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'kvmfleet-seed-'));
  try {
    const image = join(dir, 'seed.img');
    try {
      await run('mkfs.vfat', ['-n', 'CIDATA', '-C', image, String(SEED_KIB)]);
    } catch (error) {
      throw new Error(
        `cannot make the cloud-init seed: mkfs.vfat failed (apt-get install dosfstools mtools): ${(error as Error).message}`,
      );
    }
    for (const [name, text] of Object.entries(files)) {
      await writeFile(join(dir, name), text);
      await run('mcopy', ['-i', image, join(dir, name), `::/${name}`]);
    }
    return await readFile(image);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
