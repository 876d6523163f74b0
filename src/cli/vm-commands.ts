/**
 * CLI verbs for hypervisors, VMs, templates and jobs, read like virsh and virt-install:
 *   kvmfleet vm create vm1 --site dc1 --memory 32768 --vcpus 4 --disk 40 --network bridge:br0 --cdrom /iso/x.iso --graphics spice,password=…
 *   kvmfleet vm start|shutdown|destroy|undefine|list, kvmfleet template seal, kvmfleet vm clone, kvmfleet vm deploy (a job with a progress bar)
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Job } from '../vms/job-model.ts';
import type { Vm } from '../vms/vm-service.ts';
import type { Hypervisor } from '../vms/hypervisors.ts';
import type { ApiClient } from './client.ts';
import { formatRecord, formatTable } from './table.ts';

export interface CliContext {
  readonly client: () => ApiClient;
  readonly print: (data: unknown, human: () => string) => void;
  readonly json: () => boolean;
}

const enc = encodeURIComponent;
const whole = (value: string) => {
  if (!/^\d+$/.test(value)) throw new Error(`"${value}" is not a whole number`);
  return Number(value);
};

/** virt-install's --graphics spice,password=x,listen=y */
export function parseGraphics(value: string): { type: 'vnc' | 'spice'; password?: string; listen?: string } {
  const [type, ...options] = value.split(',');
  if (type !== 'vnc' && type !== 'spice') throw new Error(`--graphics: "${type}" is not vnc or spice`);
  const out: { type: 'vnc' | 'spice'; password?: string; listen?: string } = { type };
  for (const option of options) {
    const [key, ...rest] = option.split('=');
    const v = rest.join('=');
    if (key === 'password') out.password = v;
    else if (key === 'listen') out.listen = v;
    else throw new Error(`--graphics: unknown option "${key}"`);
  }
  return out;
}

/** virt-install's --network bridge:br0 */
export function parseNetwork(value: string): string {
  const m = /^bridge[:=](.+)$/.exec(value);
  if (!m) throw new Error(`--network: expected bridge:NAME, not "${value}"`);
  return m[1]!;
}

/** A one-line progress bar on a terminal; plain lines otherwise (logs, CI). */
export function progressLine(done: number, failed: number, total: number, width = 30): string {
  const filled = total ? Math.round((done / total) * width) : width;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${failed ? ` (${failed} failed)` : ''}`;
}

export async function followJob(ctx: CliContext, id: number): Promise<Job> {
  const tty = process.stderr.isTTY && !ctx.json();
  let last = '';
  for (;;) {
    const job = await ctx.client().request<Job>('GET', `/api/v1/jobs/${id}`);
    const line = progressLine(job.done, job.failed, job.total);
    if (line !== last && !ctx.json()) process.stderr.write(tty ? `\r${line}` : `${line}\n`);
    last = line;
    if (job.state !== 'running' && job.state !== 'queued') {
      if (tty) process.stderr.write('\n');
      return job;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

export function registerVmCommands(program: Command, ctx: CliContext): void {
  const { client, print } = ctx;

  const hv = program.command('hypervisor').description('hypervisors (libvirt hosts) that VMs run on');
  hv.command('list')
    .option('--site <site>')
    .action(async (o: { site?: string }) => {
      const data = await client().request<
        {
          name: string;
          site: string;
          uri: string;
          health: string;
          domainType: string;
          cpus: number;
          memoryMiB: number;
          poolAvailableBytes: number | null;
        }[]
      >('GET', `/api/v1/hypervisors${o.site ? `?site=${enc(o.site)}` : ''}`);
      print(data, () =>
        formatTable(
          ['name', 'site', 'uri', 'health', 'type', 'cpus', 'memory MiB', 'pool free GiB'],
          data.map((h) => [
            h.name,
            h.site,
            h.uri,
            h.health,
            h.domainType,
            h.cpus,
            h.memoryMiB,
            h.poolAvailableBytes === null ? null : (h.poolAvailableBytes / 2 ** 30).toFixed(1),
          ]),
        ),
      );
    });
  hv.command('add <name>')
    .description('register a hypervisor by libvirt URI; its capacity is read from libvirt')
    .requiredOption('--uri <uri>', 'qemu:///system, qemu+ssh://root@hv1/system, qemu+tcp://hv1/system')
    .requiredOption('--site <site>')
    .option('--pool <pool>', 'storage pool for VM disks', 'default')
    .option('--bridge <bridge>', 'host bridge for VM NICs', 'br0')
    .option('--max-parallel <n>', 'concurrent clone operations in jobs', whole)
    .option('--domain-type <type>', 'auto (probe), kvm or qemu', 'auto')
    .action(
      async (
        name: string,
        o: { uri: string; site: string; pool: string; bridge: string; maxParallel?: number; domainType: string },
      ) => {
        const data = await client().request<Hypervisor>('POST', '/api/v1/hypervisors', {
          json: {
            name,
            uri: o.uri,
            site: o.site,
            storagePool: o.pool,
            bridge: o.bridge,
            maxParallel: o.maxParallel,
            domainType: o.domainType,
          },
        });
        print(
          data,
          () =>
            `hypervisor ${data.name} added: ${data.cpus} CPUs, ${data.memoryMiB} MiB, domain type ${data.domainType} (${data.domainTypeReason})`,
        );
      },
    );
  hv.command('show <name>')
    .description('one hypervisor: capacity, health, and its domain type with what the KVM probe saw')
    .action(async (name: string) => {
      const data = await client().request<Hypervisor>('GET', `/api/v1/hypervisors/${enc(name)}`);
      print(data, () => formatRecord(data as unknown as Record<string, string>));
    });
  hv.command('probe <name>')
    .description('probe KVM again: kvm only if a KVM guest is seen to run code, else qemu (TCG), with the reason')
    .action(async (name: string) => {
      const data = await client().request<Hypervisor>('POST', `/api/v1/hypervisors/${enc(name)}/probe`);
      print(data, () => `${data.name}: domain type ${data.domainType} — ${data.domainTypeReason}`);
    });
  hv.command('refresh <name>').action(async (name: string) => {
    const data = await client().request<Record<string, unknown>>('POST', `/api/v1/hypervisors/${enc(name)}/refresh`);
    print(data, () => formatRecord(data as Record<string, string>));
  });
  hv.command('rm <name>').action(async (name: string) => {
    await client().request('DELETE', `/api/v1/hypervisors/${enc(name)}`);
    if (!ctx.json()) console.log(`hypervisor ${name} removed`);
  });

  const vm = program.command('vm').description('virtual machines (as virsh and virt-install)');
  vm.command('list')
    .description('VMs on every hypervisor with their state (as virsh list --all)')
    .action(async () => {
      const data = await client().request<{
        vms: Vm[];
        unmanaged: { hypervisor: string; name: string; state: string }[];
      }>('GET', '/api/v1/vms');
      print(data, () =>
        [
          formatTable(
            ['name', 'hypervisor', 'state', 'memory MiB', 'vcpus', 'template', 'clone'],
            data.vms.map((v) => [v.name, v.hypervisor, v.state, v.memoryMiB, v.vcpus, v.template, v.cloneKind]),
          ),
          ...(data.unmanaged.length
            ? [
                '',
                'not managed by kvmfleet:',
                formatTable(
                  ['name', 'hypervisor', 'state'],
                  data.unmanaged.map((u) => [u.name, u.hypervisor, u.state]),
                ),
              ]
            : []),
        ].join('\n'),
      );
    });
  vm.command('create <name>')
    .description('create a VM (the virt-install job)')
    .option('--hypervisor <name>')
    .option('--site <site>', 'place it on the hypervisor of this site with the most free memory')
    .requiredOption('--memory <MiB>', 'memory in MiB (virt-install --ram)', whole)
    .requiredOption('--vcpus <n>', '', whole)
    .option('--disk <GiB>', 'new qcow2 disk size in GiB', Number)
    .option('--cdrom <iso>', 'install from this ISO (a path on the hypervisor)')
    .option('--pxe', 'install by network boot (from kvmfleet)')
    .option('--import <disk>', 'boot an existing disk image (a path on the hypervisor)')
    .option('--network <bridge:NAME>', 'e.g. bridge:br0', parseNetwork)
    .option('--os-variant <variant>')
    .option('--graphics <spec>', 'spice|vnc[,password=…][,listen=…]', parseGraphics)
    .option('--mac <mac>')
    .option('--autostart')
    .option('--no-start', 'define only')
    .option('--anti-affinity <group>', 'never on a hypervisor with another VM of this group')
    .action(
      async (
        name: string,
        o: {
          hypervisor?: string;
          site?: string;
          memory: number;
          vcpus: number;
          disk?: number;
          cdrom?: string;
          pxe?: boolean;
          import?: string;
          network?: string;
          osVariant?: string;
          graphics?: object;
          mac?: string;
          autostart?: boolean;
          start: boolean;
          antiAffinity?: string;
        },
      ) => {
        const sources = [o.cdrom && 'cdrom', o.pxe && 'pxe', o.import && 'import'].filter(Boolean);
        if (sources.length > 1) throw new Error('choose one install source: --cdrom, --pxe or --import');
        const source = o.cdrom
          ? { kind: 'cdrom', iso: o.cdrom }
          : o.pxe
            ? { kind: 'pxe' }
            : o.import
              ? { kind: 'import', disk: o.import }
              : { kind: 'none' };
        const data = await client().request<Vm>('POST', '/api/v1/vms', {
          json: {
            name,
            hypervisor: o.hypervisor,
            site: o.site,
            memoryMiB: o.memory,
            vcpus: o.vcpus,
            diskGiB: o.disk,
            source,
            bridge: o.network,
            osVariant: o.osVariant,
            graphics: o.graphics,
            mac: o.mac,
            autostart: o.autostart ?? false,
            start: o.start,
            antiAffinity: o.antiAffinity,
          },
        });
        print(data, () => `VM ${data.name} created on ${data.hypervisor} (${data.state})`);
      },
    );
  vm.command('clone <template> <name>')
    .description('a linked (default) or full clone of a template, with its own cloud-init identity')
    .option('--full', 'an independent copy of the disk')
    .option('--hypervisor <name>')
    .option('--hostname <hostname>')
    .option('--domain <domain>')
    .option('--ip <ip>')
    .option(
      '--address-from <network>',
      'a free static address from this kvmfleet network (prefix, gateway, DNS from it)',
    )
    .option('--prefix <bits>', '', whole)
    .option('--gateway <ip>')
    .option('--dns <ip...>')
    .option('--ssh-key <file...>', 'public key files')
    .option('--anti-affinity <group>')
    .option('--start')
    .action(
      async (
        template: string,
        name: string,
        o: {
          full?: boolean;
          hypervisor?: string;
          hostname?: string;
          domain?: string;
          ip?: string;
          addressFrom?: string;
          prefix?: number;
          gateway?: string;
          dns?: string[];
          sshKey?: string[];
          antiAffinity?: string;
          start?: boolean;
        },
      ) => {
        const sshKeys = (o.sshKey ?? []).map((f) => readFileSync(f, 'utf8').trim());
        const identity = Object.fromEntries(
          Object.entries({
            hostname: o.hostname,
            domain: o.domain,
            ip: o.ip,
            network: o.addressFrom,
            prefix: o.prefix,
            gateway: o.gateway,
            dns: o.dns,
            sshKeys: sshKeys.length ? sshKeys : undefined,
          }).filter(([, v]) => v !== undefined),
        );
        const data = await client().request<Vm>('POST', `/api/v1/templates/${enc(template)}/clones`, {
          json: {
            name,
            kind: o.full ? 'full' : 'linked',
            hypervisor: o.hypervisor,
            identity,
            antiAffinity: o.antiAffinity,
            start: o.start ?? false,
          },
        });
        print(
          data,
          () => `VM ${data.name}: ${data.cloneKind} clone of ${template} on ${data.hypervisor} (${data.state})`,
        );
      },
    );
  vm.command('deploy <template>')
    .description('bulk deploy: N clones across a site, as a job with progress')
    .requiredOption('--count <n>', '', whole)
    .requiredOption('--prefix <prefix>', 'names are PREFIX-001, PREFIX-002, …')
    .requiredOption('--site <site>')
    .option('--full')
    .option('--hypervisor <name...>', 'only these hypervisors')
    .option('--anti-affinity <group>')
    .option('--start')
    .option('--no-wait', 'print the job and return')
    .action(
      async (
        template: string,
        o: {
          count: number;
          prefix: string;
          site: string;
          full?: boolean;
          hypervisor?: string[];
          antiAffinity?: string;
          start?: boolean;
          wait: boolean;
        },
      ) => {
        const job = await client().request<Job & { warning?: string }>('POST', '/api/v1/jobs/bulk-clone', {
          json: {
            template,
            count: o.count,
            namePrefix: o.prefix,
            kind: o.full ? 'full' : 'linked',
            site: o.site,
            hypervisors: o.hypervisor,
            antiAffinity: o.antiAffinity,
            start: o.start ?? false,
          },
        });
        if (job.warning && !ctx.json()) console.error(`warning: ${job.warning}`);
        if (!o.wait) return print(job, () => `job ${job.id} queued: ${job.total} clones`);
        const done = await followJob(ctx, job.id);
        print(done, () =>
          [
            formatTable(
              ['vm', 'hypervisor', 'result', 'ms'],
              done.results.map((r) => [r.name, r.hypervisor, r.ok ? 'ok' : r.error, r.ms]),
            ),
            `job ${done.id}: ${done.state}, ${done.done - done.failed} ok, ${done.failed} failed`,
          ].join('\n'),
        );
        if (done.failed) process.exitCode = 1;
      },
    );
  vm.command('start <name>').action(async (name: string) => {
    const data = await client().request<Vm>('POST', `/api/v1/vms/${enc(name)}/start`);
    print(data, () => `Domain '${data.name}' started`);
  });
  vm.command('shutdown <name>')
    .description('ACPI shutdown; with --force, destroyed if still running after --timeout')
    .option('--timeout <seconds>', '', whole)
    .option('--force')
    .action(async (name: string, o: { timeout?: number; force?: boolean }) => {
      const q = new URLSearchParams({
        ...(o.timeout ? { timeoutS: String(o.timeout) } : {}),
        ...(o.force ? { force: 'true' } : {}),
      }).toString();
      const data = await client().request<Vm & { forced: boolean }>(
        'POST',
        `/api/v1/vms/${enc(name)}/shutdown${q ? `?${q}` : ''}`,
      );
      print(data, () =>
        data.forced
          ? `Domain '${data.name}' did not shut down in time and was destroyed`
          : `Domain '${data.name}' is being shutdown`,
      );
    });
  vm.command('destroy <name>').action(async (name: string) => {
    const data = await client().request<Vm>('POST', `/api/v1/vms/${enc(name)}/destroy`);
    print(data, () => `Domain '${data.name}' destroyed`);
  });
  vm.command('undefine <name>')
    .option('--remove-all-storage', 'delete its disk and seed volumes too')
    .action(async (name: string, o: { removeAllStorage?: boolean }) => {
      await client().request('DELETE', `/api/v1/vms/${enc(name)}${o.removeAllStorage ? '?storage=true' : ''}`);
      if (!ctx.json()) console.log(`Domain '${name}' has been undefined`);
    });
  vm.command('autostart <name>')
    .option('--disable')
    .action(async (name: string, o: { disable?: boolean }) => {
      const data = await client().request('POST', `/api/v1/vms/${enc(name)}/autostart`, {
        json: { enabled: !o.disable },
      });
      print(data, () => `Domain '${name}' ${o.disable ? 'unmarked' : 'marked'} as autostarted`);
    });

  const template = program.command('template').description('templates: sealed VM disks to clone from');
  template
    .command('seal <vm>')
    .description('seal a shut-off VM with virt-sysprep and make it a template')
    .option('--name <template>', 'template name (default: the VM name)')
    .action(async (vmName: string, o: { name?: string }) => {
      const data = await client().request<{ name: string; operations: string[] }>('POST', '/api/v1/templates', {
        json: { vm: vmName, name: o.name },
      });
      print(data, () => `template ${data.name} sealed; virt-sysprep ran: ${data.operations.join(', ')}`);
    });
  template.command('list').action(async () => {
    const data = await client().request<
      { name: string; hypervisor: string; disk: string; linkedClones: number; sealedAt: string }[]
    >('GET', '/api/v1/templates');
    print(data, () =>
      formatTable(
        ['name', 'hypervisor', 'disk', 'linked clones', 'sealed'],
        data.map((t) => [t.name, t.hypervisor, t.disk, t.linkedClones, t.sealedAt]),
      ),
    );
  });
  template
    .command('rm <name>')
    .option('--remove-storage')
    .action(async (name: string, o: { removeStorage?: boolean }) => {
      await client().request('DELETE', `/api/v1/templates/${enc(name)}${o.removeStorage ? '?storage=true' : ''}`);
      if (!ctx.json()) console.log(`template ${name} removed`);
    });

  const job = program.command('job').description('long-running work and its progress');
  job.command('list').action(async () => {
    const data = await client().request<Job[]>('GET', '/api/v1/jobs');
    print(data, () =>
      formatTable(
        ['id', 'state', 'done', 'failed', 'total'],
        data.map((j) => [j.id, j.state, j.done, j.failed, j.total]),
      ),
    );
  });
  job.command('show <id>').action(async (id: string) => {
    const data = await client().request<Job>('GET', `/api/v1/jobs/${whole(id)}`);
    print(data, () =>
      [
        progressLine(data.done, data.failed, data.total),
        data.kind.startsWith('site-power')
          ? formatTable(
              ['host', 'bmc', 'result', 'ms'],
              data.results.map((r) => [
                r.name,
                r.hypervisor,
                r.ok ? (r.detail ?? 'ok') : `${r.code}: ${r.error}`,
                r.ms,
              ]),
            )
          : formatTable(
              ['vm', 'hypervisor', 'result', 'ms'],
              data.results.map((r) => [r.name, r.hypervisor, r.ok ? 'ok' : r.error, r.ms]),
            ),
      ].join('\n'),
    );
  });
  job
    .command('cancel <id>')
    .description('cancel a job: items under way finish, the others are not started')
    .action(async (id: string) => {
      const data = await client().request<Job>('POST', `/api/v1/jobs/${whole(id)}/cancel`);
      print(
        data,
        () =>
          `job ${data.id}: ${data.state}${data.state === 'running' ? ' (cancelling: items under way finish first)' : ''}`,
      );
    });
  job.command('wait <id>').action(async (id: string) => {
    const done = await followJob(ctx, whole(id));
    print(done, () => `job ${done.id}: ${done.state}`);
  });
}
