/**
 * Worker threads that run read transfers, so that a boot storm uses more than one core: the
 * listener (port 69, the limits, the events and the metrics) stays in the main thread and hands
 * each accepted request to the least busy worker, which opens the transfer's socket (its TID) and
 * runs it. File contents are shared memory, posted once per file version and worker; nothing is
 * copied per transfer.
 *
 * No single fault stops the role: a worker that dies ends its transfers as 'closed' (detail
 * "transfer worker exited"; their clients retry) and is started again, after a pause that grows
 * while it keeps dying; until a worker is ready, transfers run in the main thread.
 */
import { Worker } from 'node:worker_threads';
import type { TransferOutcome, TransferSpec } from './transfer.ts';

export interface WorkerData {
  /** Budget for file versions and DATA packets the worker keeps, each. */
  readonly cacheBytes: number;
}

export type ToWorker =
  | {
      readonly t: 'start';
      readonly id: number;
      readonly file: number;
      readonly shared: SharedArrayBuffer;
      readonly offset: number;
      readonly length: number;
      readonly spec: TransferSpec;
    }
  | { readonly t: 'close'; readonly id: number; readonly outcome: 'closed' | 'evicted' }
  | { readonly t: 'stop' };

export type FromWorker =
  | { readonly t: 'ready' }
  | { readonly t: 'stopped' }
  | { readonly t: 'confirmed'; readonly id: number }
  | {
      readonly t: 'done';
      readonly id: number;
      readonly outcome: TransferOutcome;
      readonly bytes: number;
      /** Bytes of DATA packets the worker holds now. */
      readonly packetBytes: number;
    };

export type TransferDone = (outcome: TransferOutcome, bytes: number, detail?: string) => void;

/** What the server holds of a transfer, wherever it runs. */
export interface TransferHandle {
  readonly confirmed: boolean;
  readonly finished: boolean;
  /** Stops the transfer (server shutdown, or its slot given to a newer request: 'evicted'). */
  close(outcome?: 'closed' | 'evicted'): void;
}

const ENTRY = new URL('./transfer-worker.ts', import.meta.url).href;
/**
 * The worker's first code (a script or a module, as the process's flags make eval'd code): imports
 * the entry, through tsx's loader when the worker has none (bin/kvmfleet.js registers tsx from code,
 * which a worker does not inherit).
 */
const BOOTSTRAP = `
import('node:worker_threads').then(async ({ workerData }) => {
  try {
    await import(workerData.entry);
  } catch (error) {
    if (error?.code !== 'ERR_UNKNOWN_FILE_EXTENSION' || !workerData.tsx) throw error;
    (await import(workerData.tsx)).register();
    await import(workerData.entry + '?tsx'); // a new URL: the failed import stays cached under the old one
  }
});`;

function tsxApi(): string | undefined {
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    return undefined;
  }
}

class RemoteTransfer implements TransferHandle {
  confirmed = false;
  finished = false;

  constructor(
    readonly id: number,
    private readonly slot: Slot,
    private readonly onDone: TransferDone,
  ) {}

  close(outcome: 'closed' | 'evicted' = 'closed'): void {
    if (this.finished) return;
    this.slot.worker.postMessage({ t: 'close', id: this.id, outcome } satisfies ToWorker);
    // An evicted transfer's slot is needed now; a closed one reports its bytes when the worker has closed it.
    if (outcome === 'evicted') this.end('evicted', 0);
  }

  end(outcome: TransferOutcome, bytes: number, detail?: string): void {
    if (this.finished) return;
    this.finished = true;
    this.slot.transfers.delete(this.id);
    this.onDone(outcome, bytes, detail);
  }
}

interface Slot {
  readonly worker: Worker;
  readonly transfers: Map<number, RemoteTransfer>;
  ready: boolean;
  packetBytes: number;
  stopped?: () => void;
}

export class TransferPool {
  readonly #size: number;
  readonly #cacheBytes: number;
  readonly #slots = new Set<Slot>();
  /** Shared copies of file versions that were not in shared memory already, and every version's id. */
  readonly #sharedCopies = new WeakMap<Buffer, Buffer>();
  readonly #fileIds = new WeakMap<SharedArrayBuffer, number>();
  #nextFile = 1;
  #nextTransfer = 1;
  #started = false;
  #stopping = false;
  /** Worker deaths in a row, each soon after its start (the restart pause grows with them). */
  #quickDeaths = 0;
  readonly #restarts = new Set<NodeJS.Timeout>();
  /** Workers that died (not at stop), and the last error one died of. */
  crashes = 0;
  lastError: string | undefined;

  constructor(size: number, options: { cacheBytes?: number } = {}) {
    this.#size = size;
    this.#cacheBytes = Math.floor((options.cacheBytes ?? 256 * 1024 * 1024) / Math.max(1, size));
  }

  /** Starts the workers (they take transfers once each says it is ready); again, does nothing. */
  start(): void {
    if (this.#started || this.#stopping) return;
    this.#started = true;
    for (let i = 0; i < this.#size; i++) this.#spawn();
  }

  /** Workers ready to take transfers. */
  get ready(): number {
    let n = 0;
    for (const slot of this.#slots) if (slot.ready) n += 1;
    return n;
  }

  /** Bytes of DATA packets the workers hold (as each last said). */
  get packetBytes(): number {
    let n = 0;
    for (const slot of this.#slots) n += slot.packetBytes;
    return n;
  }

  /** The worker threads (for tests, which end one to see the pool recover). */
  threads(): Worker[] {
    return [...this.#slots].map((slot) => slot.worker);
  }

  /** Runs a transfer on the least busy ready worker; undefined when none is ready (run it here). */
  run(spec: TransferSpec, data: Buffer, onDone: TransferDone): TransferHandle | undefined {
    let slot: Slot | undefined;
    for (const s of this.#slots) if (s.ready && (!slot || s.transfers.size < slot.transfers.size)) slot = s;
    if (!slot) return undefined;
    const shared = this.#shared(data);
    const sab = shared.buffer as SharedArrayBuffer;
    let file = this.#fileIds.get(sab);
    if (file === undefined) this.#fileIds.set(sab, (file = this.#nextFile++));
    const id = this.#nextTransfer++;
    const handle = new RemoteTransfer(id, slot, onDone);
    slot.transfers.set(id, handle);
    slot.worker.postMessage({
      t: 'start',
      id,
      file,
      shared: sab,
      offset: shared.byteOffset,
      length: shared.length,
      spec,
    } satisfies ToWorker);
    return handle;
  }

  /** Ends every worker: their transfers are closed (and reported), then the threads exit. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#restarts) clearTimeout(timer);
    this.#restarts.clear();
    await Promise.all(
      [...this.#slots].map(async (slot) => {
        const stopped = new Promise<void>((resolve) => (slot.stopped = resolve));
        slot.worker.postMessage({ t: 'stop' } satisfies ToWorker);
        const timer = setTimeout(() => slot.stopped?.(), 2000);
        await stopped;
        clearTimeout(timer);
        await slot.worker.terminate();
        this.#lost(slot, 'closed');
      }),
    );
  }

  /** The data in shared memory: itself when it is already there (the file store loads files so). */
  #shared(data: Buffer): Buffer {
    if (data.buffer instanceof SharedArrayBuffer) return data;
    let copy = this.#sharedCopies.get(data);
    if (!copy) {
      copy = Buffer.from(new SharedArrayBuffer(data.length));
      data.copy(copy);
      this.#sharedCopies.set(data, copy);
    }
    return copy;
  }

  #spawn(): void {
    const started = Date.now();
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: { entry: ENTRY, tsx: tsxApi(), cacheBytes: this.#cacheBytes },
    });
    const slot: Slot = { worker, transfers: new Map(), ready: false, packetBytes: 0 };
    this.#slots.add(slot);
    worker.on('message', (message: FromWorker) => {
      switch (message.t) {
        case 'ready':
          slot.ready = true;
          break;
        case 'confirmed': {
          const transfer = slot.transfers.get(message.id);
          if (transfer) transfer.confirmed = true;
          break;
        }
        case 'done':
          slot.packetBytes = message.packetBytes;
          slot.transfers.get(message.id)?.end(message.outcome, message.bytes);
          break;
        case 'stopped':
          slot.stopped?.();
          break;
      }
    });
    worker.on('error', (error) => {
      // Followed by 'exit', which recovers; kept for workers() (and so for the role's log).
      this.lastError = error.message;
    });
    worker.on('exit', () => {
      slot.stopped?.();
      if (this.#stopping) return;
      this.crashes += 1;
      this.#lost(slot, 'closed', 'transfer worker exited');
      this.#quickDeaths = Date.now() - started < 10_000 ? this.#quickDeaths + 1 : 0;
      const timer = setTimeout(
        () => {
          this.#restarts.delete(timer);
          if (!this.#stopping) this.#spawn();
        },
        Math.min(5000, 50 * 2 ** this.#quickDeaths),
      );
      timer.unref();
      this.#restarts.add(timer);
    });
  }

  /** Takes a worker out of the pool; what it was running ends with this outcome. */
  #lost(slot: Slot, outcome: TransferOutcome, detail?: string): void {
    slot.ready = false;
    this.#slots.delete(slot);
    for (const transfer of [...slot.transfers.values()]) transfer.end(outcome, 0, detail);
  }
}
