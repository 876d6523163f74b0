/**
 * Volume uploads over one connection, many at once, as a bulk deploy does (the client keeps fewer
 * than libvirtd's max_client_requests calls in progress and queues the rest): all complete, and
 * every byte arrives.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { LibvirtClient } from '../../../src/protocols/libvirt/remote.ts';
import { cleanUpAtExit, createDirPool, ensureLibvirtd } from '../../helpers/libvirtd.ts';

const POOL = `kvt-up-${process.pid % 100000}`;
let work: string;
let daemon: { stop(): Promise<void> };
let client: LibvirtClient;
const cleanup = cleanUpAtExit([['pool-destroy', POOL]]);

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kvt-upload-'));
  await chmod(work, 0o755);
  daemon = await ensureLibvirtd();
  await createDirPool(POOL, work);
  client = await LibvirtClient.connect('qemu:///system');
});
after(async () => {
  await client?.close();
  cleanup();
  await daemon?.stop();
  await rm(work, { recursive: true, force: true });
});

test(
  '12 volumes created and uploaded at once on one connection: no deadlock, every byte there',
  { timeout: 120_000 },
  async () => {
    const pool = await client.lookupStoragePool(POOL);
    const payloads = Array.from({ length: 12 }, () => randomBytes(1536 * 1024));
    const started = Date.now();
    await Promise.all(
      payloads.map(async (data, i) => {
        const volume = await client.createVolume(
          pool,
          `<volume><name>up-${i}.img</name><capacity unit='bytes'>${data.length}</capacity><target><format type='raw'/></target></volume>`,
        );
        await client.uploadVolume(volume, data);
        await client.getVolumeInfo(volume);
      }),
    );
    assert.ok(Date.now() - started < 60_000, `took ${Date.now() - started} ms`);
    for (const [i, data] of payloads.entries())
      assert.ok((await readFile(join(work, `up-${i}.img`))).equals(data), `volume ${i} holds what was sent`);
  },
);
