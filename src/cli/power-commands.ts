/**
 * CLI verbs for BMCs, read like ipmitool's:
 *   kvmfleet host set HOST --bmc-type ipmi --bmc-address 10.0.0.9[:623] --bmc-user admin --bmc-password-stdin
 *   kvmfleet host set HOST --bmc-credentials rack1            (a shared set: kvmfleet bmc credentials set)
 *   kvmfleet host set HOST --bmc-type redfish --bmc-address bmc9.example --bmc-ca-file /etc/kvmfleet/bmc-ca.pem
 *   kvmfleet host set HOST --bmc-insecure                     (Redfish: no certificate check for this BMC)
 *   kvmfleet host power HOST status|on|off|soft|cycle|reset
 *   kvmfleet host bootdev HOST pxe|disk [--persistent] [--uefi]
 * Passwords come from standard input only (an argument is visible in `ps` and shell history).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { formatRecord, formatTable, type Cell } from './table.ts';
import type { CliContext } from './vm-commands.ts';

const enc = encodeURIComponent;
const ACTIONS = ['status', 'on', 'off', 'soft', 'cycle', 'reset'];

interface BmcView {
  type: string;
  address: string;
  username: string | null;
  credentials: string | null;
  passwordSet: boolean;
  insecure?: true;
  caFile?: string;
}

/** The first line of standard input, without its line end. */
function passwordFromStdin(): string {
  const text = (readFileSync(0, 'utf8').split('\n')[0] ?? '').replace(/\r$/, '');
  if (!text) throw new Error('give the BMC password on standard input');
  return text;
}

export function registerPowerCommands(program: Command, ctx: CliContext): void {
  const { client, print } = ctx;
  const host = program.commands.find((c) => c.name() === 'host');
  if (!host) throw new Error('registerPowerCommands needs the host command first');

  host
    .command('set <hostname>')
    .description("set the host's BMC (type, address, user, password from standard input or a shared credentials set)")
    .option('--bmc-type <type>', 'ipmi or redfish')
    .option('--bmc-address <address>', 'HOST[:PORT] or [IPv6]:PORT (default port 623 for ipmi, 443 for redfish)')
    .option('--bmc-user <user>', 'BMC user name')
    .option('--bmc-password-stdin', 'read the BMC password from standard input (stored encrypted, never shown)')
    .option(
      '--bmc-credentials <name>',
      'use a shared credentials set instead of a password of its own ("none": stop using one)',
    )
    .option('--bmc-insecure', "Redfish: do not check the BMC's TLS certificate (--no-bmc-insecure: check it again)")
    .option('--no-bmc-insecure', "Redfish: check the BMC's TLS certificate again")
    .option(
      '--bmc-ca-file <path>',
      'Redfish: PEM CA file (absolute path on the kvmfleet server) for the BMC\'s certificate ("default": KVMFLEET_BMC_CA_FILE or the system store)',
    )
    .action(
      async (
        hostname: string,
        o: {
          bmcType?: string;
          bmcAddress?: string;
          bmcUser?: string;
          bmcPasswordStdin?: boolean;
          bmcCredentials?: string;
          bmcInsecure?: boolean;
          bmcCaFile?: string;
        },
      ) => {
        if (
          !o.bmcType &&
          !o.bmcAddress &&
          !o.bmcUser &&
          !o.bmcPasswordStdin &&
          !o.bmcCredentials &&
          o.bmcInsecure === undefined &&
          !o.bmcCaFile
        )
          throw new Error(
            'nothing to set: give --bmc-type, --bmc-address, --bmc-user, --bmc-password-stdin, --bmc-credentials, --bmc-insecure or --bmc-ca-file',
          );
        const current = await client().request<BmcView | null>('GET', `/api/v1/hosts/${enc(hostname)}/bmc`);
        const type = o.bmcType ?? current?.type;
        const address = o.bmcAddress ?? current?.address;
        if (!type || !address) throw new Error(`host ${hostname} has no BMC yet: give --bmc-type and --bmc-address`);
        const body = {
          type,
          address,
          ...(o.bmcUser ? { username: o.bmcUser } : {}),
          ...(o.bmcPasswordStdin ? { password: passwordFromStdin() } : {}),
          ...(o.bmcCredentials ? { credentials: o.bmcCredentials === 'none' ? null : o.bmcCredentials } : {}),
          ...(o.bmcInsecure !== undefined ? { insecure: o.bmcInsecure } : {}),
          ...(o.bmcCaFile ? { caFile: o.bmcCaFile === 'default' ? null : o.bmcCaFile } : {}),
        };
        const data = await client().request<BmcView>('PUT', `/api/v1/hosts/${enc(hostname)}/bmc`, { json: body });
        print(
          data,
          () =>
            `host ${hostname}: BMC ${data.type} ${data.address}, user ${data.username ?? '-'}${data.credentials ? `, credentials ${data.credentials}` : ''}, password ${data.passwordSet ? 'set' : 'not set'}${data.insecure ? ', certificate not checked' : ''}${data.caFile ? `, CA ${data.caFile}` : ''}`,
        );
      },
    );

  host
    .command('bmc <hostname>')
    .description("show the host's BMC settings (never the password)")
    .action(async (hostname: string) => {
      const data = await client().request<BmcView | null>('GET', `/api/v1/hosts/${enc(hostname)}/bmc`);
      print(data, () => (data ? formatRecord(data as unknown as Record<string, Cell>) : `host ${hostname} has no BMC`));
    });

  host
    .command('power <hostname> <action>')
    .description(`power through the host's BMC: ${ACTIONS.join('|')}`)
    .action(async (hostname: string, action: string) => {
      if (!ACTIONS.includes(action)) throw new Error(`power action "${action}" is not one of ${ACTIONS.join(', ')}`);
      const path = `/api/v1/hosts/${enc(hostname)}/power`;
      const data = await (action === 'status'
        ? client().request<{ powerState: string; sent: string | null }>('GET', path)
        : client().request<{ powerState: string; sent: string | null }>('POST', path, { json: { action } }));
      print(data, () =>
        action === 'status'
          ? `Chassis Power is ${data.powerState}`
          : data.sent === null
            ? `host ${hostname}: power is already ${data.powerState}, nothing sent`
            : `host ${hostname}: sent ${data.sent}, power is ${data.powerState}`,
      );
    });

  host
    .command('bootdev <hostname> <device>')
    .description('set the next boot device through the BMC: pxe or disk (next boot only unless --persistent)')
    .option('--persistent', 'every boot from now on')
    .option('--uefi', 'UEFI boot (else legacy BIOS)')
    .action(async (hostname: string, device: string, o: { persistent?: boolean; uefi?: boolean }) => {
      if (device !== 'pxe' && device !== 'disk') throw new Error(`boot device "${device}" is not pxe or disk`);
      const data = await client().request<{ device: string; persistent: boolean; uefi: boolean }>(
        'POST',
        `/api/v1/hosts/${enc(hostname)}/bootdev`,
        { json: { device, persistent: !!o.persistent, uefi: !!o.uefi } },
      );
      print(
        data,
        () =>
          `host ${hostname}: next boot ${data.device}${data.persistent ? ' (persistent)' : ' (once)'}${data.uefi ? ', UEFI' : ''}`,
      );
    });

  // `host rebuild HOST --power-cycle`: the rebuild verb gains the BMC. Its plain form is kept as it
  // was (the same request and words); with --power-cycle one call does bootdev pxe, rebuild, cycle.
  const rebuild = host.commands.find((c) => c.name() === 'rebuild');
  if (!rebuild) throw new Error('registerPowerCommands needs the host rebuild command first');
  rebuild
    .option('--power-cycle', 'through the BMC: next boot PXE (once), then power cycle (or on, if it is off)')
    .option('--uefi', 'with --power-cycle: network boot in UEFI mode')
    .action(async (hostname: string, o: { powerCycle?: boolean; uefi?: boolean }) => {
      if (!o.powerCycle) {
        if (o.uefi) throw new Error('--uefi goes with --power-cycle');
        const data = await client().request<{ hostname: string }>('POST', `/api/v1/hosts/${enc(hostname)}/rebuild`);
        print(data, () => `host ${data.hostname} will be rebuilt at its next network boot`);
        return;
      }
      const data = await client().request<{ hostname: string; power: { sent: string; powerState: string } }>(
        'POST',
        `/api/v1/hosts/${enc(hostname)}/rebuild/power-cycle`,
        { json: { uefi: !!o.uefi } },
      );
      print(
        data,
        () =>
          `host ${data.hostname} will be rebuilt: next boot pxe (once), sent ${data.power.sent}, power is ${data.power.powerState}`,
      );
    });

  const credentials = program
    .command('bmc')
    .description('BMC credentials shared by many hosts')
    .command('credentials')
    .description('shared BMC credentials sets');
  credentials.command('list').action(async () => {
    const data = await client().request<{ name: string; username: string; hosts: number }[]>(
      'GET',
      '/api/v1/bmc-credentials',
    );
    print(data, () =>
      formatTable(
        ['NAME', 'USER', 'HOSTS'],
        data.map((c) => [c.name, c.username, String(c.hosts)]),
      ),
    );
  });
  credentials
    .command('set <name>')
    .description('create or replace a credentials set (password from standard input)')
    .requiredOption('--user <user>', 'BMC user name')
    .requiredOption('--password-stdin', 'read the password from standard input')
    .action(async (name: string, o: { user: string }) => {
      const data = await client().request<{ name: string; hosts: number }>(
        'PUT',
        `/api/v1/bmc-credentials/${enc(name)}`,
        { json: { username: o.user, password: passwordFromStdin() } },
      );
      print(data, () => `credentials ${data.name} set (used by ${data.hosts} host(s))`);
    });
  credentials.command('rm <name>').action(async (name: string) => {
    await client().request('DELETE', `/api/v1/bmc-credentials/${enc(name)}`);
    if (!ctx.json()) console.log(`credentials ${name} removed`);
  });
}
