/**
 * A VM lab on the real libvirtd (qemu:///system, started if none answers — test/helpers/libvirtd.ts):
 * an isolated bridge, a transient directory pool, the test OS disk (test/helpers/test-os.ts), and a
 * kvmfleet process (api, worker — and whatever else the scenario names) on its own embedded store,
 * reached over loopback. Every domain named with the lab's prefix is removed at the end.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createDirPool, createIsolatedBridge, ensureLibvirtd, removeDomains } from '../../test/helpers/libvirtd.ts';
import { startServer, type ServerProcess } from '../../test/helpers/server.ts';
import { buildTestOsDisk } from '../../test/helpers/test-os.ts';
import type { Undo } from './cleanup.ts';
import type { ApiAnswer } from './lab.ts';

const run = promisify(execFile);
type Defer = (label: string, undo: Undo) => () => Promise<void>;

export const virsh = async (...args: string[]): Promise<string> =>
  (await run('virsh', ['-c', 'qemu:///system', ...args])).stdout;

export interface VmLab {
  readonly prefix: string;
  readonly pool: string;
  readonly poolDir: string;
  readonly bridge: string;
  readonly work: string;
  /** The test OS disk in the pool, for a VM to import. */
  readonly sourceDisk: string;
  readonly server: ServerProcess;
  start(): Promise<ServerProcess>;
  crash(): Promise<void>;
  api(method: string, path: string, body?: unknown): Promise<ApiAnswer>;
  readonly unexpectedExits: string[];
}

export async function createVmLab(defer: Defer, label: string, serveArgs: readonly string[] = []): Promise<VmLab> {
  const id = process.pid % 10000;
  const prefix = `kvc-${label}-${id}`;
  const pool = `kvc-${label}-${id}`;
  const bridge = `kvc${label.slice(0, 4)}${id}`.slice(0, 15);
  const work = mkdtempSync(join(tmpdir(), `kvmfleet-chaos-${label}-`));
  chmodSync(work, 0o755); // QEMU (libvirt-qemu) reads the pool
  defer('work dir', () => rmSync(work, { recursive: true, force: true }));
  const poolDir = join(work, 'pool');
  mkdirSync(poolDir);
  const daemon = await ensureLibvirtd();
  defer('libvirtd', () => daemon.stop());
  await createIsolatedBridge(bridge);
  defer('bridge', () =>
    run('ip', ['link', 'del', bridge]).then(
      () => {},
      () => {},
    ),
  );
  await createDirPool(pool, poolDir);
  defer('storage pool', () =>
    virsh('pool-destroy', pool).then(
      () => {},
      () => {},
    ),
  );
  defer('domains', () => removeDomains(prefix));
  const sourceDisk = join(poolDir, `${prefix}-src.qcow2`);
  await buildTestOsDisk(sourceDisk);
  await virsh('pool-refresh', pool);
  const args = [
    '--roles',
    'api,worker',
    '--data-dir',
    join(work, 'data'),
    '--cpu-overcommit',
    '16',
    '--log-level',
    'warn',
    ...serveArgs,
  ];
  const unexpectedExits: string[] = [];
  const expected = new WeakSet<ServerProcess>();
  let current: ServerProcess | undefined;
  const lab: VmLab = {
    prefix,
    pool,
    poolDir,
    bridge,
    work,
    sourceDisk,
    unexpectedExits,
    get server() {
      if (!current) throw new Error('kvmfleet is not running');
      return current;
    },
    async start() {
      const server = await startServer(args, {}, 90_000);
      current = server;
      server.child.once('exit', (code, signal) => {
        if (!expected.has(server))
          unexpectedExits.push(`kvmfleet exited (${code ?? signal}): ${server.lines.slice(-5).join(' | ')}`);
      });
      return server;
    },
    async crash() {
      expected.add(lab.server);
      await lab.server.kill('SIGKILL');
    },
    async api(method, path, body) {
      const answer = await fetch(`${lab.server.url}${path}`, {
        method,
        ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
        signal: AbortSignal.timeout(600_000),
      });
      const text = await answer.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status: answer.status, headers: Object.fromEntries(answer.headers), body: parsed };
    },
  };
  defer('kvmfleet', async () => {
    if (current) {
      expected.add(current);
      await current.kill('SIGTERM');
    }
  });
  await lab.start();
  return lab;
}

export async function ok(lab: VmLab, method: string, path: string, body?: unknown): Promise<unknown> {
  const answer = await lab.api(method, path, body);
  if (answer.status < 200 || answer.status > 299)
    throw new Error(`${method} ${path}: HTTP ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
  return answer.body;
}

/** A site, the local hypervisor, a VM importing the test OS disk (never started), sealed as a template. */
export async function makeTemplate(
  lab: VmLab,
  hypervisor: { name: string; uri: string } = { name: 'hv1', uri: 'qemu:///system' },
): Promise<{ template: string; sealS: number }> {
  await ok(lab, 'POST', '/api/v1/sites', { name: 'chaos', buildCap: 10 });
  await ok(lab, 'POST', '/api/v1/hypervisors', {
    name: hypervisor.name,
    uri: hypervisor.uri,
    site: 'chaos',
    storagePool: lab.pool,
    bridge: lab.bridge,
    maxParallel: 4,
    domainType: 'qemu',
  });
  const source = `${lab.prefix}-src`;
  await ok(lab, 'POST', '/api/v1/vms', {
    name: source,
    hypervisor: hypervisor.name,
    memoryMiB: 128,
    vcpus: 1,
    source: { kind: 'import', disk: lab.sourceDisk },
    start: false,
  });
  const template = `${lab.prefix}-tmpl`;
  const at = Date.now();
  await ok(lab, 'POST', '/api/v1/templates', { vm: source, name: template });
  return { template, sealS: (Date.now() - at) / 1000 };
}
