/**
 * A transfer worker thread (see transfer-pool.ts): runs the read transfers the listener hands it,
 * each on its own socket (its own TID) in this thread's event loop, and reports back when a client
 * first acknowledges and when a transfer ends. File contents arrive as shared memory, once per file
 * version; the DATA packets are built here, once per file and block size, as in the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PacketCache } from './packet-cache.ts';
import { openTransfer, type ReadTransfer } from './transfer.ts';
import type { FromWorker, ToWorker, WorkerData } from './transfer-pool.ts';

const port = parentPort!;
const { cacheBytes } = workerData as WorkerData;
const packets = new PacketCache(cacheBytes);
/** File versions by the id the pool gave them, least recently used first; views of shared memory. */
const files = new Map<number, Buffer>();
let fileBytes = 0;
const transfers = new Map<number, ReadTransfer>();
const post = (message: FromWorker) => port.postMessage(message);

function file(id: number, shared: SharedArrayBuffer, offset: number, length: number): Buffer {
  let data = files.get(id);
  if (data) files.delete(id);
  else {
    data = Buffer.from(shared, offset, length);
    fileBytes += length;
  }
  files.set(id, data);
  for (const [key, old] of files) {
    if (fileBytes <= cacheBytes || key === id) break;
    files.delete(key);
    fileBytes -= old.length;
  }
  return data;
}

port.on('message', (message: ToWorker) => {
  switch (message.t) {
    case 'start': {
      const { id } = message;
      const data = file(message.file, message.shared, message.offset, message.length);
      const transfer = openTransfer(
        message.spec,
        data,
        (outcome, bytes) => {
          transfers.delete(id);
          post({ t: 'done', id, outcome, bytes, packetBytes: packets.bytes });
        },
        packets,
        () => post({ t: 'confirmed', id }),
      );
      if (!transfer.finished) transfers.set(id, transfer);
      break;
    }
    case 'close':
      transfers.get(message.id)?.close(message.outcome);
      break;
    case 'stop':
      for (const transfer of [...transfers.values()]) transfer.close();
      post({ t: 'stopped' });
      port.close();
      break;
  }
});
post({ t: 'ready' });
