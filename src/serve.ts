/** `kvmfleet serve`: open the store, start the roles asked for, stop them cleanly on SIGINT/SIGTERM. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApi } from './api/app.ts';
import { DEFAULT_BUILD_POLICY, recordEvent, type BuildPolicy } from './boot/builds.ts';
import { buildBootHttp } from './boot/http.ts';
import { KickstartTemplates } from './boot/kickstart.ts';
import { MirrorCache } from './boot/mirror.ts';
import { BootService } from './boot/service.ts';
import type { Role } from './cluster/roles.ts';
import { DEBIAN_IPXE_FILES, FileStore } from './protocols/tftp/files.ts';
import { TftpServer, type TransferEvent } from './protocols/tftp/server.ts';
import { openStore, type Store } from './store/open.ts';

export interface ServeOptions {
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
  readonly api: { host: string; port: number };
  readonly http: { host: string; port: number; treesDir?: string | undefined; baseUrl?: string | undefined; trustProxy?: boolean; mirrors?: ReadonlyMap<string, string> };
  readonly tftp: { host: string; port: number; root?: string | undefined; timeoutMs?: number | undefined };
  readonly policy?: Partial<BuildPolicy>;
  readonly roles: readonly Role[];
  readonly logLevel: string;
}

export interface Running {
  readonly store: Store;
  readonly boot: BootService;
  /** What each role listens on, e.g. { api: "http://127.0.0.1:8080", tftp: "udp://0.0.0.0:69" }. */
  readonly endpoints: Partial<Record<Role, string>>;
  stop(): Promise<void>;
}

const urlOf = (host: string, port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

function boundPort(app: FastifyInstance, fallback: number): number {
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : fallback;
}

export async function serve(options: ServeOptions): Promise<Running> {
  const store = await openStore({ databaseUrl: options.databaseUrl, dataDir: options.dataDir });
  const local = (name: string) => join(options.dataDir === 'memory://' ? '.' : options.dataDir, name);
  const templatesDir = local(join('templates', 'kickstart'));
  const boot = new BootService({ db: store.db, templates: new KickstartTemplates(templatesDir), policy: { ...DEFAULT_BUILD_POLICY, ...options.policy } });
  let api: FastifyInstance | undefined;
  let http: FastifyInstance | undefined;
  let tftp: TftpServer | undefined;
  const endpoints: Partial<Record<Role, string>> = {};
  const stopAll = async () => {
    await tftp?.close();
    await http?.close();
    await api?.close();
    await store.close();
  };
  try {
    if (options.roles.includes('tftp')) {
      const root = options.tftp.root ?? local('tftp');
      mkdirSync(root, { recursive: true });
      tftp = new TftpServer({
        files: new FileStore({ root, builtins: DEBIAN_IPXE_FILES }),
        host: options.tftp.host,
        port: options.tftp.port,
        ...(options.tftp.timeoutMs ? { limits: { defaultTimeoutMs: options.tftp.timeoutMs } } : {}),
        onTransfer: (event) => void recordTftpEvent(store, event).catch(() => {}),
      });
      const bound = await tftp.listen().catch((error: NodeJS.ErrnoException) => {
        throw new Error(`tftp cannot listen on ${options.tftp.host}:${options.tftp.port} (${error.code ?? error.message})${error.code === 'EACCES' ? ': port 69 needs root or CAP_NET_BIND_SERVICE' : ''}`);
      });
      endpoints.tftp = `udp://${bound.address}:${bound.port}`;
    }
    const bootBaseUrl = options.http.baseUrl ?? urlOf(options.http.host === '0.0.0.0' ? '127.0.0.1' : options.http.host, options.http.port);
    if (options.roles.includes('http')) {
      const treesDir = options.http.treesDir ?? local('trees');
      mkdirSync(treesDir, { recursive: true });
      const mirrors = options.http.mirrors?.size ? new MirrorCache(local('mirror-cache'), options.http.mirrors) : undefined;
      http = await buildBootHttp({ store, boot, treesDir, mirrors, baseUrl: options.http.baseUrl, logger: { level: options.logLevel }, trustProxy: options.http.trustProxy ?? false });
      await http.listen({ host: options.http.host, port: options.http.port });
      endpoints.http = urlOf(options.http.host, boundPort(http, options.http.port));
    }
    if (options.roles.includes('api')) {
      api = await buildApi({ store, boot, bootBaseUrl: endpoints.http && !options.http.baseUrl ? endpoints.http.replace('0.0.0.0', '127.0.0.1') : bootBaseUrl, logger: { level: options.logLevel } });
      await api.listen({ host: options.api.host, port: options.api.port });
      endpoints.api = urlOf(options.api.host, boundPort(api, options.api.port));
    }
  } catch (error) {
    await stopAll().catch(() => {});
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    store,
    boot,
    endpoints,
    stop() {
      stopping ??= stopAll();
      return stopping;
    },
  };
}

/** A finished TFTP transfer goes on the timeline of the host that has the client's address. */
async function recordTftpEvent(store: Store, event: TransferEvent): Promise<void> {
  const ip = event.client.replace(/:\d+$/, '');
  const host = await store.db
    .selectFrom('hosts')
    .select('id')
    .where((eb) => eb.or([eb('ip', '=', ip), eb('last_seen_ip', '=', ip)]))
    .executeTakeFirst();
  if (host) await recordEvent(store.db, host.id, 'tftp', { file: event.filename, outcome: event.outcome, bytes: event.bytes });
}
