/**
 * The MAC of simulated machine `i` under a 3-byte prefix ("02:00:00" → 02:00:00:00:00:2a for 42).
 * The storm client and whoever fills the inventory for it (the boot-storm bench, the 3-site example)
 * must agree on it, so it is written once.
 */
export function stormMac(prefix: string, i: number): string {
  return `${prefix}:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
}
