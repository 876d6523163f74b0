/**
 * Datagrams for fuzzing a DHCP decoder and what reads its packets: slices of random bytes and
 * seed packets with a few bytes changed (mostly in the options area, where the structure is),
 * some cut short. Deterministic given the pool, so a failure names its index.
 */
import { randomBytes } from 'node:crypto';

export function* mutatedDatagrams(seeds: readonly Buffer[], count: number): Generator<Buffer> {
  const pool = randomBytes(1 << 20);
  for (let i = 0; i < count; i++) {
    let packet: Buffer;
    if (i % 4 === 0) {
      const start = (i * 7919) % (pool.length - 600);
      packet = pool.subarray(start, start + ((i * 31) % 600));
    } else {
      packet = Buffer.from(seeds[i % seeds.length]!);
      const flips = 1 + (i % 5);
      for (let f = 0; f < flips; f++) {
        const at = f % 2 === 0 ? 236 + ((i * 131 + f * 17) % (packet.length - 236)) : (i * 257 + f) % packet.length;
        packet[at] = pool[(i + f * 97) % pool.length]!;
      }
      if (i % 7 === 0) packet = packet.subarray(0, (i * 13) % packet.length);
    }
    yield packet;
  }
}
