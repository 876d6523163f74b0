/**
 * A preload for measuring where a server's memory is (`node --import ./bench/memory-probe.mjs …`, or through
 * NODE_OPTIONS): every KVMFLEET_MEMORY_PROBE_MS (500) it appends one JSON line to the file named by
 * KVMFLEET_MEMORY_PROBE — process.memoryUsage() (rss, heapTotal, heapUsed, external, arrayBuffers), the
 * size of every WebAssembly memory made in the process (PGlite's heap: it only grows) and, from
 * /proc/self/smaps, the resident size of the largest mappings (a WebAssembly memory is one reservation of
 * several GiB, so it is told apart from V8's heap and malloc's arenas). Only for the bench; nothing in
 * src/ loads it.
 */
import { appendFileSync, readFileSync } from 'node:fs';

const file = process.env.KVMFLEET_MEMORY_PROBE;
if (file) {
  const memories = [];
  const Original = WebAssembly.Memory;
  // PGlite makes its heap with `new WebAssembly.Memory(…)` before instantiating: keep a reference to read its size.
  WebAssembly.Memory = new Proxy(Original, {
    construct(target, args) {
      const memory = Reflect.construct(target, args);
      // Weakly: the probe must not keep alive a memory its owner dropped (PGlite's initdb instance).
      const from = /\/([^/()]+\.(?:m?js|ts)):\d+/.exec(new Error().stack?.split('\n')[2] ?? '')?.[1] ?? '?';
      memories.push({ ref: new WeakRef(memory), from });
      return memory;
    },
  });
  const MiB = (bytes) => Math.round((bytes / 2 ** 20) * 10) / 10;
  const mappings = () => {
    // Resident KiB per mapping, grouped: the WebAssembly reservation (> 4 GiB), named files, anonymous rest.
    const groups = { wasmReservation: 0, files: 0, anonymous: 0, other: 0 };
    let size = 0;
    let name = '';
    for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
      const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (head) {
        size = parseInt(head[2], 16) - parseInt(head[1], 16);
        name = head[3];
        continue;
      }
      const rss = /^Rss:\s+(\d+) kB/.exec(line);
      if (!rss) continue;
      const kib = Number(rss[1]);
      if (size >= 4 * 2 ** 30) groups.wasmReservation += kib;
      else if (name.startsWith('/')) groups.files += kib;
      else if (name === '' || name === '[heap]') groups.anonymous += kib;
      else groups.other += kib;
    }
    return Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, MiB(v * 1024)]));
  };
  const sample = () => {
    const usage = process.memoryUsage();
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    appendFileSync(
      file,
      JSON.stringify({
        t: Date.now(),
        rss: MiB(usage.rss),
        hwm: MiB(Number(hwm ?? 0) * 1024),
        heapTotal: MiB(usage.heapTotal),
        heapUsed: MiB(usage.heapUsed),
        external: MiB(usage.external),
        arrayBuffers: MiB(usage.arrayBuffers),
        wasm: memories.flatMap(({ ref, from }) => {
          const memory = ref.deref();
          return memory ? [`${from} ${MiB(memory.buffer.byteLength)}`] : [];
        }),
        smaps: mappings(),
      }) + '\n',
    );
  };
  setInterval(sample, Number(process.env.KVMFLEET_MEMORY_PROBE_MS ?? 500)).unref();
}
