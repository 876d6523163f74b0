/**
 * The inventory verbs: sites, networks, profiles, hosts (add, adopt, rebuild, timeline, …), what a host would boot,
 * its Kickstart, imports; and the node registry with the HAProxy configuration made from it. Each talks to the
 * REST API and prints a table, or JSON with --json.
 */
import type { SiteBuilds, TimelineEntry } from '../fleet/build-model.ts';
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import type { Host, Network, Profile, Site } from '../fleet/model.ts';
import { integer } from './serve-options.ts';
import { formatRecord, formatTable } from './table.ts';
import type { CliContext } from './vm-commands.ts';

const enc = encodeURIComponent;
const list = (value: string) =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');

/** site, network, profile, host, boot, kickstart and import. */
export function registerInventoryCommands(program: Command, ctx: CliContext): void {
  const { client, print } = ctx;
  const site = program.command('site').description('sites and their build caps');
  site.command('list').action(async () => {
    const sites = await client().request<Site[]>('GET', '/api/v1/sites');
    print(sites, () =>
      formatTable(
        ['name', 'build cap', 'description'],
        sites.map((s) => [s.name, s.buildCap, s.description]),
      ),
    );
  });
  site.command('show <name>').action(async (name: string) => {
    const data = await client().request<Site>('GET', `/api/v1/sites/${enc(name)}`);
    print(data, () => formatRecord({ ...data }));
  });
  site
    .command('add <name>')
    .option('--cap <n>', 'concurrent builds allowed', integer)
    .option('--description <text>')
    .action(async (name: string, options: { cap?: number; description?: string }) => {
      const data = await client().request<Site>('POST', '/api/v1/sites', {
        json: { name, buildCap: options.cap, description: options.description },
      });
      print(data, () => `site ${data.name} added (build cap ${data.buildCap})`);
    });
  site
    .command('set <name>')
    .description('change a site (e.g. its build cap, at run time)')
    .option('--cap <n>', 'concurrent builds allowed', integer)
    .option('--description <text>')
    .action(async (name: string, options: { cap?: number; description?: string }) => {
      const data = await client().request<Site>('PATCH', `/api/v1/sites/${enc(name)}`, {
        json: { buildCap: options.cap, description: options.description },
      });
      print(data, () => formatRecord({ ...data }));
    });
  site
    .command('builds <name>')
    .description('hosts building and queued at the site (admission control)')
    .action(async (name: string) => {
      const data = await client().request<SiteBuilds>('GET', `/api/v1/sites/${enc(name)}/builds`);
      print(data, () =>
        [
          `site ${name}: ${data.building.length} of ${data.cap} building, ${data.queued.length} queued`,
          formatTable(
            ['state', 'hostname', 'position', 'since'],
            [
              ...data.building.map((b) => ['building', b.hostname, null, b.since]),
              ...data.queued.map((q) => ['queued', q.hostname, q.position, q.since]),
            ],
          ),
        ].join('\n'),
      );
    });
  site.command('rm <name>').action(async (name: string) => {
    await client().request('DELETE', `/api/v1/sites/${enc(name)}`);
    if (!ctx.json()) console.log(`site ${name} removed`);
  });

  const network = program.command('network').description('networks (subnets) of sites');
  network
    .command('list')
    .option('--site <site>')
    .action(async (options: { site?: string }) => {
      const data = await client().request<Network[]>(
        'GET',
        `/api/v1/networks${options.site ? `?site=${enc(options.site)}` : ''}`,
      );
      print(data, () =>
        formatTable(
          ['name', 'site', 'cidr', 'gateway', 'dynamic range', 'relays'],
          data.map((n) => [
            n.name,
            n.site,
            n.cidr,
            n.gateway,
            n.dynamicRange ? `${n.dynamicRange.start}-${n.dynamicRange.end}` : null,
            n.relays,
          ]),
        ),
      );
    });
  network.command('show <name>').action(async (name: string) => {
    const data = await client().request<Network>('GET', `/api/v1/networks/${enc(name)}`);
    print(data, () => formatRecord({ ...data }));
  });
  network
    .command('add <name>')
    .requiredOption('--site <site>')
    .requiredOption('--cidr <cidr>', 'e.g. 10.1.0.0/22')
    .option('--gateway <ip>')
    .option('--dns <ips>', 'comma-separated', list)
    .option('--domain <domain>')
    .option('--range <start-end>', 'dynamic pool, e.g. 10.1.3.0-10.1.3.250')
    .option('--relay <ips>', 'relay agent addresses (giaddr), comma-separated', list)
    .option('--vlan <id>', 'VLAN id', integer)
    .option('--lease <seconds>', 'lease time', integer)
    .action(
      async (
        name: string,
        o: {
          site: string;
          cidr: string;
          gateway?: string;
          dns?: string[];
          domain?: string;
          range?: string;
          relay?: string[];
          vlan?: number;
          lease?: number;
        },
      ) => {
        let dynamicRange: { start: string; end: string } | undefined;
        if (o.range) {
          const [start, end] = o.range.split('-');
          if (!start || !end) throw new Error(`--range wants start-end, not "${o.range}"`);
          dynamicRange = { start, end };
        }
        const data = await client().request<Network>('POST', '/api/v1/networks', {
          json: {
            name,
            site: o.site,
            cidr: o.cidr,
            gateway: o.gateway,
            dns: o.dns,
            domain: o.domain,
            dynamicRange,
            relays: o.relay,
            vlan: o.vlan,
            leaseSeconds: o.lease,
          },
        });
        print(data, () => `network ${data.name} (${data.cidr}) added to site ${data.site}`);
      },
    );
  network.command('rm <name>').action(async (name: string) => {
    await client().request('DELETE', `/api/v1/networks/${enc(name)}`);
    if (!ctx.json()) console.log(`network ${name} removed`);
  });

  const profile = program.command('profile').description('install profiles (OS, install tree, Kickstart template)');
  profile.command('list').action(async () => {
    const data = await client().request<Profile[]>('GET', '/api/v1/profiles');
    print(data, () =>
      formatTable(
        ['name', 'os', 'arch', 'install tree', 'template'],
        data.map((p) => [p.name, p.os, p.arch, p.installTreeUrl, p.kickstartTemplate]),
      ),
    );
  });
  profile.command('show <name>').action(async (name: string) => {
    const data = await client().request<Profile>('GET', `/api/v1/profiles/${enc(name)}`);
    print(data, () => formatRecord({ ...data }));
  });
  profile
    .command('add <name>')
    .requiredOption('--os <os>', 'rhel6|rhel7|rhel8|rhel9|rhel10')
    .requiredOption('--tree <url>', 'install tree URL')
    .option('--arch <arch>')
    .option('--kernel <path>', 'kernel path in the tree')
    .option('--initrd <path>', 'initrd path in the tree')
    .option('--template <name>', 'Kickstart template')
    .option('--packages <list>', 'comma-separated packages/groups', list)
    .option('--kernel-args <args>')
    .option('--root-password-hash <hash>', 'crypt(3) hash for rootpw --iscrypted')
    .action(
      async (
        name: string,
        o: {
          os: string;
          tree: string;
          arch?: string;
          kernel?: string;
          initrd?: string;
          template?: string;
          packages?: string[];
          kernelArgs?: string;
          rootPasswordHash?: string;
        },
      ) => {
        const data = await client().request<Profile>('POST', '/api/v1/profiles', {
          json: {
            name,
            os: o.os,
            installTreeUrl: o.tree,
            arch: o.arch,
            kernelPath: o.kernel,
            initrdPath: o.initrd,
            kickstartTemplate: o.template,
            packages: o.packages,
            kernelArgs: o.kernelArgs,
            rootPasswordHash: o.rootPasswordHash,
          },
        });
        print(data, () => `profile ${data.name} added`);
      },
    );
  profile.command('rm <name>').action(async (name: string) => {
    await client().request('DELETE', `/api/v1/profiles/${enc(name)}`);
    if (!ctx.json()) console.log(`profile ${name} removed`);
  });

  const host = program.command('host').description('hosts (bare-metal machines)');
  host
    .command('list')
    .option('--site <site>')
    .option('--network <network>')
    .option('--state <state>', 'discovered|ready|building|built|failed')
    .option('--find <text>', 'part of a hostname, an address or a MAC')
    .option('--limit <n>', 'at most this many (by hostname)')
    .option('--offset <n>', 'skip this many first')
    .action(
      async (o: {
        site?: string;
        network?: string;
        state?: string;
        find?: string;
        limit?: string;
        offset?: string;
      }) => {
        const { find, ...rest } = o;
        const query = new URLSearchParams(
          Object.entries({ ...rest, q: find }).filter(([, v]) => v !== undefined) as [string, string][],
        ).toString();
        const data = await client().request<Host[]>('GET', `/api/v1/hosts${query ? `?${query}` : ''}`);
        print(data, () =>
          formatTable(
            ['hostname', 'mac', 'ip', 'network', 'profile', 'state', 'power'],
            data.map((h) => [h.hostname, h.macs, h.ip, h.network, h.profile, h.buildState, h.power?.state ?? '-']),
          ),
        );
      },
    );
  host.command('show <hostname>').action(async (name: string) => {
    const data = await client().request<Host>('GET', `/api/v1/hosts/${enc(name)}`);
    // The BMC's last power reading (polled), as one line.
    const power = data.power
      ? `${data.power.state}${data.power.error ? ` (${data.power.error})` : ''}, read ${data.power.checkedAt}`
      : data.bmc
        ? 'not read yet'
        : 'no BMC';
    print(data, () => formatRecord({ ...data, power }));
  });
  host
    .command('add <hostname>')
    .requiredOption('--mac <mac...>', 'MAC address(es)')
    .requiredOption('--network <network>')
    .requiredOption('--profile <profile>')
    .option('--ip <ip>', 'reserved address (outside the dynamic range)')
    .option('--uuid <uuid>', 'SMBIOS UUID')
    .action(
      async (hostname: string, o: { mac: string[]; network: string; profile: string; ip?: string; uuid?: string }) => {
        const data = await client().request<Host>('POST', '/api/v1/hosts', {
          json: { hostname, macs: o.mac, network: o.network, profile: o.profile, ip: o.ip, smbiosUuid: o.uuid },
        });
        print(data, () => `host ${data.hostname} added (${data.ip ?? 'dynamic address'}, ${data.buildState})`);
      },
    );
  host
    .command('adopt <discovered>')
    .description('adopt a discovered machine (host list --state discovered): it installs at its next retry')
    .requiredOption('--hostname <hostname>', 'its name from now on')
    .requiredOption('--profile <profile>')
    .option('--network <network>', 'default: the network it was discovered on')
    .option('--ip <ip>', 'reserved address (outside the dynamic range)')
    .action(async (discovered: string, o: { hostname: string; profile: string; network?: string; ip?: string }) => {
      const data = await client().request<Host>('POST', `/api/v1/hosts/${enc(discovered)}/adopt`, {
        json: { hostname: o.hostname, profile: o.profile, network: o.network, ip: o.ip },
      });
      print(
        data,
        () =>
          `${discovered} adopted as ${data.hostname} (${data.ip ?? 'dynamic address'}, ${data.network}, ${data.profile}): ${data.buildState}`,
      );
    });
  host
    .command('rebuild <hostname>')
    .description('install the host again at its next network boot')
    .action(async (name: string) => {
      const data = await client().request<{ hostname: string }>('POST', `/api/v1/hosts/${enc(name)}/rebuild`);
      print(data, () => `host ${data.hostname} will be rebuilt at its next network boot`);
    });
  host
    .command('mark-built <hostname>')
    .description('declare a building or failed host built (installed, but its callback was lost); audited')
    .action(async (name: string) => {
      const data = await client().request<{ hostname: string; was: string }>(
        'POST',
        `/api/v1/hosts/${enc(name)}/mark-built`,
      );
      print(data, () => `host ${data.hostname} marked built (was ${data.was})`);
    });
  host
    .command('timeline <hostname>')
    .description('boot and build events of a host (DHCP, TFTP, script, kernel, Kickstart, built)')
    .action(async (name: string) => {
      const data = await client().request<TimelineEntry[]>('GET', `/api/v1/hosts/${enc(name)}/timeline`);
      print(data, () =>
        formatTable(
          ['at', 'event', 'detail'],
          data.map((e) => [e.at, e.kind, Object.keys(e.detail).length ? JSON.stringify(e.detail) : null]),
        ),
      );
    });
  host.command('rm <hostname>').action(async (name: string) => {
    await client().request('DELETE', `/api/v1/hosts/${enc(name)}`);
    if (!ctx.json()) console.log(`host ${name} removed`);
  });

  program
    .command('boot')
    .description('what machines get from the boot service')
    .command('show <hostname>')
    .description('print the iPXE script the host would get now (no side effects)')
    .option('--platform <platform>', 'pcbios or efi')
    .action(async (name: string, o: { platform?: string }) => {
      process.stdout.write(
        await client().request<string>(
          'GET',
          `/api/v1/hosts/${enc(name)}/boot-script${o.platform ? `?platform=${enc(o.platform)}` : ''}`,
        ),
      );
    });

  program
    .command('kickstart')
    .description('Kickstart files')
    .command('render <hostname>')
    .description("print the host's Kickstart to stdout (with a placeholder build token)")
    .action(async (name: string) => {
      process.stdout.write(await client().request<string>('GET', `/api/v1/hosts/${enc(name)}/kickstart`));
    });

  program
    .command('import <file>')
    .description('import a site YAML (.yaml/.yml) or a hosts CSV (.csv), all or nothing')
    .option('--dry-run', 'check only; write nothing')
    .option('--upsert', 'hosts: update hosts that exist instead of refusing them')
    .option('--kind <kind>', 'site or hosts (for standard input, "-", or a file named otherwise)')
    .action(async (file: string, o: { dryRun?: boolean; upsert?: boolean; kind?: string }) => {
      const text = readFileSync(file === '-' ? 0 : file, 'utf8');
      const ext = extname(file).toLowerCase();
      if (o.kind !== undefined && o.kind !== 'site' && o.kind !== 'hosts')
        throw new Error(`--kind is site or hosts, not "${o.kind}"`);
      const kind = o.kind ?? (ext === '.csv' ? 'hosts' : ext === '.yaml' || ext === '.yml' ? 'site' : undefined);
      if (!kind)
        throw new Error(`cannot tell what ${file} is: name it .yaml/.yml (site) or .csv (hosts), or say --kind`);
      const query = new URLSearchParams({
        ...(o.dryRun ? { dryRun: 'true' } : {}),
        ...(o.upsert ? { mode: 'upsert' } : {}),
      }).toString();
      const result = await client().request<Record<string, unknown>>(
        'POST',
        `/api/v1/import/${kind}${query ? `?${query}` : ''}`,
        { text, contentType: kind === 'hosts' ? 'text/csv' : 'application/yaml' },
      );
      print(
        result,
        () => `${o.dryRun ? 'checked (dry run, nothing written)' : 'imported'} ${file}: ${JSON.stringify(result)}`,
      );
    });
}

/** nodes and haproxy-config: the processes in the node registry. */
export function registerNodeCommands(program: Command, ctx: CliContext): void {
  const { client, print } = ctx;
  program
    .command('nodes')
    .description('kvmfleet processes (boot servers, API nodes) and whether they are alive')
    .option('--site <site>')
    .action(async (o: { site?: string }) => {
      const data = await client().request<
        {
          name: string;
          site: string | null;
          roles: string[];
          httpAddress: string | null;
          seenAt: string;
          alive: boolean;
          version: string;
        }[]
      >('GET', `/api/v1/nodes${o.site ? `?site=${enc(o.site)}` : ''}`);
      print(data, () =>
        formatTable(
          ['name', 'site', 'roles', 'boot http', 'seen', 'alive', 'version'],
          data.map((n) => [n.name, n.site, n.roles, n.httpAddress, n.seenAt, n.alive, n.version]),
        ),
      );
    });
  program
    .command('haproxy-config <site>')
    .description("HAProxy configuration for the site's live boot HTTP nodes (check it with haproxy -c -f)")
    .option('--bind <host:port>', 'where HAProxy listens for machines', '*:8081')
    .option('--stats <host:port>', "also serve HAProxy's stats page here")
    .option('--check-interval <ms>', 'health check period (a node is down after 2 failed checks)', '2000')
    .action(async (site: string, o: { bind: string; stats?: string; checkInterval: string }) => {
      const query = new URLSearchParams({
        bind: o.bind,
        checkIntervalMs: o.checkInterval,
        ...(o.stats ? { stats: o.stats } : {}),
      }).toString();
      process.stdout.write(await client().request<string>('GET', `/api/v1/sites/${enc(site)}/haproxy.cfg?${query}`));
    });
}
