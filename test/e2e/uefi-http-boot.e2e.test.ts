/**
 * End to end: an OVMF guest boots by UEFI HTTP boot (not PXE) from kvmfleet's offer.
 *
 * Debian's OVMF (edk2 2022.11) has HttpBootDxe; with its PXE clients turned off through fw_cfg
 * (opt/org.tianocore/IPv4PXESupport, IPv6PXESupport — OvmfPkg/RUNTIME_CONFIG.md) and IPv6 off, the
 * only network boot option left on the NIC is "UEFI HTTPv4". Its DHCP DISCOVER carries vendor class
 * HTTPClient and arch 16; kvmfleet offers `http://<boot>/ipxe.efi` with option 60 HTTPClient; the
 * firmware fetches ipxe.efi over HTTP and runs it; iPXE then asks DHCP again (as iPXE) and fetches its
 * script — all on the host's timeline. No TFTP role runs: a PXE fallback could not succeed. TCG guest
 * on an isolated bridge (lab.ts).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { LibvirtClient } from '../../src/protocols/libvirt/remote.ts';
import { ensureLibvirtd, LIBVIRT_SOCKET } from '../helpers/libvirtd.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';
import { createLab, labLeftovers, type Lab } from './lab.ts';

const run = promisify(execFile);
const NAME = `kvfe2e-${process.pid % 100000}-httpboot`;
const MAC = '52:54:00:e2:00:16';
const UNDEFINE_ALL = 1 | 2 | 4;

interface TimelineEvent {
  kind: string;
  detail: Record<string, unknown>;
}

let work: string;
let lab: Lab;
let server: ServerProcess;
let daemon: { stop(): Promise<void> };
let client: LibvirtClient;
let serialLog: string;
let defined = false;

/**
 * The guest: OVMF, a NIC without option ROM (so no iPXE ROM either), no disk, the NIC first in the
 * boot order, and the firmware's PXE clients and IPv6 turned off by fw_cfg (libvirt sysinfo fwcfg).
 */
function guestXml(): string {
  return `<domain type='qemu'>
  <name>${NAME}</name>
  <uuid>${randomUUID()}</uuid>
  <description>kvmfleet e2e test guest (UEFI HTTP boot)</description>
  <memory unit='MiB'>384</memory>
  <vcpu>1</vcpu>
  <sysinfo type='fwcfg'>
    <entry name='opt/org.tianocore/IPv4PXESupport'>no</entry>
    <entry name='opt/org.tianocore/IPv6PXESupport'>no</entry>
    <entry name='opt/org.tianocore/IPv6Support'>no</entry>
  </sysinfo>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'/>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <interface type='bridge'>
      <source bridge='${lab.bridge}'/>
      <mac address='${MAC}'/>
      <model type='virtio'/>
      <rom enabled='no'/>
      <boot order='1'/>
    </interface>
    <serial type='file'><source path='${serialLog}' append='on'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>`;
}

async function api<T>(method: string, path: string, body?: unknown, type = 'application/json'): Promise<T> {
  const args = ['-sS', '--fail-with-body', '-X', method, `${server.url}${path}`];
  if (body !== undefined)
    args.push('-H', `content-type: ${type}`, '--data-binary', typeof body === 'string' ? body : JSON.stringify(body));
  const { stdout } = await lab.exec('curl', args);
  return JSON.parse(stdout) as T;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs / 1000} s waiting for ${what}; serial console:\n${(await readFile(serialLog, 'latin1').catch(() => '')).slice(-3000)}`,
      );
    await new Promise((r) => setTimeout(r, 2000));
  }
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kvt-httpboot-'));
  await chmod(work, 0o755); // QEMU runs as libvirt-qemu and writes the serial log here
  serialLog = join(work, 'serial.log');
  await writeFile(serialLog, '');
  await chmod(serialLog, 0o666);
  lab = await createLab();
  daemon = await ensureLibvirtd();
  client = await LibvirtClient.openUnix(LIBVIRT_SOCKET, 'qemu:///system');
  const ip = lab.serverIp;
  server = await startServer(
    [
      '--roles',
      'api,http,dhcp',
      '--data-dir',
      'memory://',
      '--dhcp-server-id',
      ip,
      '--http-listen',
      `${ip}:8081`,
      '--retry-seconds',
      '5',
      '--log-level',
      'warn',
    ],
    {},
    60_000,
    { netns: lab.namespace },
  );
  const s = lab.subnet;
  const site = [
    'sites:',
    '  - name: lab',
    '    networks:',
    `      - { name: lab-boot, cidr: ${s}.0/24, gateway: ${s}.1, dynamicRange: { start: ${s}.100, end: ${s}.199 } }`,
    'profiles:',
    `  - { name: p, os: rhel9, installTreeUrl: "http://${ip}:8081/trees/none" }`,
    '',
  ].join('\n');
  await api('POST', '/api/v1/import/site', site, 'application/yaml');
  // A known host (its timeline is never thinned), to be installed: it is told to boot from the network.
  await api('POST', '/api/v1/hosts', { hostname: NAME, macs: [MAC], ip: `${s}.16`, network: 'lab-boot', profile: 'p' });
  await client.defineDomainXml(guestXml());
  defined = true;
});

after(async () => {
  if (defined) {
    try {
      const dom = await client.lookupDomainByName(NAME);
      if ((await client.getDomainState(dom)).state !== 'shutoff') await client.destroyDomain(dom);
      await client.undefineDomain(dom, UNDEFINE_ALL);
    } catch {
      await run('virsh', ['-c', 'qemu:///system', 'destroy', NAME]).catch(() => {});
      await run('virsh', ['-c', 'qemu:///system', 'undefine', '--nvram', NAME]).catch(() => {});
    }
  }
  await client?.close();
  await daemon?.stop();
  await server?.kill();
  await lab?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

test(
  'OVMF boots by UEFI HTTP boot: HTTPClient DHCP, ipxe.efi over HTTP on the timeline, then iPXE asks for its script',
  { timeout: 600_000 },
  async () => {
    const started = Date.now();
    await client.startDomain(await client.lookupDomainByName(NAME));
    const timeline = () => api<TimelineEvent[]>('GET', `/api/v1/hosts/${NAME}/timeline`);
    const events = await waitFor('the script event', 480_000, async () => {
      const list = await timeline();
      return list.some((e) => e.kind === 'script') ? list : undefined;
    });
    const dhcp = events.filter((e) => e.kind === 'dhcp');
    // First the firmware's HTTP boot client (class HTTPClient / arch 16), then iPXE.
    assert.deepEqual(
      [dhcp[0]?.detail.firmware, dhcp[0]?.detail.ipxe, dhcp[0]?.detail.httpBoot],
      ['efi-x64', false, true],
      JSON.stringify(dhcp),
    );
    assert.ok(
      dhcp.some((e) => e.detail.ipxe === true),
      `iPXE asked DHCP: ${JSON.stringify(dhcp)}`,
    );
    assert.ok(
      events.findIndex((e) => e.kind === 'script') > events.findIndex((e) => e.detail.ipxe === true),
      "the script came after iPXE's DHCP",
    );
    // Between them, the firmware's download of ipxe.efi over HTTP, whole, from the host's address (the timeline is by address).
    const fetched = events.findIndex((e) => e.kind === 'firmware');
    assert.deepEqual(
      events[fetched]?.detail,
      { file: 'ipxe.efi', via: 'http', outcome: 'completed', bytes: (await stat('/usr/lib/ipxe/ipxe.efi')).size },
      JSON.stringify(events),
    );
    assert.ok(
      events.indexOf(dhcp[0]!) < fetched && fetched < events.findIndex((e) => e.detail.ipxe === true),
      `firmware DHCP → ipxe.efi over HTTP → iPXE's DHCP: ${events.map((e) => e.kind).join(' → ')}`,
    );
    // And the serial console shows the firmware's HTTP boot, not PXE, and then iPXE running (so the binary came whole).
    const serial = await readFile(serialLog, 'latin1');
    assert.doesNotMatch(serial, /Start PXE over IPv4/);
    assert.match(serial, /BdsDxe: starting Boot\d+ "UEFI HTTPv4 \(MAC:525400E20016\)"/);
    assert.match(serial, /iPXE initialising devices/);
    assert.match(serial, /52-54-00-e2-00-16 : \d+ bytes \[script\]/);
    // The firmware's choice and iPXE's script, as the console showed them (not the rest: it names a build token).
    const shown = serial.split(/[\r\n]+/).filter((l) => /BdsDxe: starting|iPXE \d|\[script\]/.test(l));
    console.log(
      `# booted in ${Math.round((Date.now() - started) / 1000)} s (TCG); serial console:\n${shown.map((l) => `#   ${l.replace(/\x1b\[[0-9;]*m/g, '')}`).join('\n')}`,
    );
  },
);

test('nothing left behind: guest, bridge, namespace', async () => {
  const dom = await client.lookupDomainByName(NAME);
  await client.destroyDomain(dom).catch(() => {});
  await client.undefineDomain(dom, UNDEFINE_ALL);
  defined = false;
  assert.ok(!(await client.listAllDomains()).some((d) => d.name === NAME));
  await server.kill(); // before its namespace goes
  await lab.cleanup();
  assert.deepEqual(await labLeftovers(lab), []);
});
