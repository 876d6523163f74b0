/**
 * The e2e's machines: libvirt guests on qemu:///system (TCG: <domain type='qemu'>), driven through
 * kvmfleet's own libvirt RPC client. Each has a blank qcow2 disk, one virtio NIC on the lab bridge,
 * boot order disk then network (the seed's BIOS order), and its serial console in a file.
 * The UEFI guest's NIC has no option ROM, so OVMF's own PXE client boots (and fetches ipxe.efi by
 * TFTP); the BIOS guest boots the NIC's iPXE ROM (QEMU has no other BIOS PXE firmware).
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LibvirtClient } from '../../src/protocols/libvirt/remote.ts';
import type { RemoteDomain } from '../../src/protocols/libvirt/types.ts';
import { domainXml, type BootDevice, type Firmware } from '../../src/vms/domain-xml.ts';

const run = promisify(execFile);

/** virDomainUndefineFlags: remove managed save, snapshots metadata and the UEFI variables file too. */
const UNDEFINE_ALL = 1 | 2 | 4;

export interface Guest {
  readonly name: string;
  readonly uuid: string;
  readonly mac: string;
  readonly firmware: Firmware;
  readonly disk: string;
  readonly serialLog: string;
}

const live = new Set<string>();
process.on('exit', () => {
  for (const name of live) {
    for (const args of [
      ['destroy', name],
      ['undefine', '--nvram', name],
    ]) {
      try {
        execFileSync('virsh', ['-c', 'qemu:///system', ...args], { stdio: 'ignore' });
      } catch {
        /* not running / gone */
      }
    }
  }
});

export class Guests {
  readonly #client: LibvirtClient;
  readonly #dir: string;
  readonly #bridge: string;
  readonly #guests = new Map<string, Guest>();

  constructor(client: LibvirtClient, dir: string, bridge: string) {
    this.#client = client;
    this.#dir = dir;
    this.#bridge = bridge;
  }

  #xml(guest: Guest, bootOrder: BootDevice[]): string {
    return domainXml({
      name: guest.name,
      uuid: guest.uuid, // redefinitions (boot order changes) must keep it
      type: 'qemu', // TCG: this machine has /dev/kvm but no working hardware acceleration
      memoryMiB: 384,
      vcpus: 1,
      firmware: guest.firmware,
      disks: [{ source: guest.disk, format: 'qcow2' }],
      interfaces: [{ bridge: this.#bridge, mac: guest.mac, rom: guest.firmware === 'bios' }],
      bootOrder,
      serial: { file: guest.serialLog },
      description: 'kvmfleet e2e test guest',
    });
  }

  async define(name: string, mac: string, firmware: Firmware): Promise<Guest> {
    const guest: Guest = {
      name,
      uuid: randomUUID(),
      mac,
      firmware,
      disk: join(this.#dir, `${name}.qcow2`),
      serialLog: join(this.#dir, `${name}.serial.log`),
    };
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', guest.disk, '64M']);
    await writeFile(guest.serialLog, '');
    await chmod(guest.serialLog, 0o666);
    live.add(name);
    await this.#client.defineDomainXml(this.#xml(guest, ['disk:0', 'net:0']));
    this.#guests.set(name, guest);
    return guest;
  }

  async #domain(guest: Guest): Promise<RemoteDomain> {
    return this.#client.lookupDomainByName(guest.name);
  }

  async powerOn(guest: Guest): Promise<void> {
    await this.#client.startDomain(await this.#domain(guest));
  }

  /**
   * Powers on with the network first for this power cycle only, as `ipmitool chassis bootdev pxe`
   * does on a BMC: the guest runs with network-then-disk until it is powered off (its reboots keep
   * the order), while its stored definition goes back to disk-then-network at once.
   */
  async powerOnFromNetworkOnce(guest: Guest): Promise<void> {
    await this.#client.defineDomainXml(this.#xml(guest, ['net:0', 'disk:0']));
    await this.powerOn(guest);
    await this.#client.defineDomainXml(this.#xml(guest, ['disk:0', 'net:0']));
  }

  async powerOff(guest: Guest): Promise<void> {
    const dom = await this.#domain(guest);
    if ((await this.#client.getDomainState(dom)).state !== 'shutoff') await this.#client.destroyDomain(dom);
  }

  async state(guest: Guest): Promise<string> {
    return (await this.#client.getDomainState(await this.#domain(guest))).state;
  }

  async serial(guest: Guest): Promise<string> {
    return readFile(guest.serialLog, 'latin1');
  }

  /** Waits until the serial console, from byte `from` on, matches; fails early on the installer double's FAILED line. */
  async waitForSerial(guest: Guest, pattern: RegExp, timeoutMs: number, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = (await this.serial(guest)).slice(from);
      if (pattern.test(text)) return text;
      const failed = /kvmfleet-installer-double: FAILED: .*/.exec(text);
      if (failed) throw new Error(`${guest.name}: ${failed[0]}`);
      if (Date.now() > deadline)
        throw new Error(
          `${guest.name}: no ${pattern} on the serial console in ${timeoutMs / 1000} s; it shows:\n${text.slice(-2000)}`,
        );
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /** Copies every guest's serial console to `dir` (kept after the run, for whoever reads a failure). */
  async saveSerialLogs(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    for (const guest of this.#guests.values())
      await copyFile(guest.serialLog, join(dir, `${guest.name.replace(/^kvfe2e-\d+-/, '')}.serial.log`)).catch(
        () => {},
      );
  }

  async removeAll(): Promise<void> {
    for (const guest of this.#guests.values()) {
      try {
        await this.powerOff(guest);
        await this.#client.undefineDomain(await this.#domain(guest), UNDEFINE_ALL);
        live.delete(guest.name);
      } catch {
        /* left to the exit handler */
      }
    }
    this.#guests.clear();
  }

  /** Names of this run's guests libvirt still knows (for the "nothing left behind" assertion). */
  async leftovers(prefix: string): Promise<string[]> {
    return (await this.#client.listAllDomains()).map((d) => d.name).filter((n) => n.startsWith(prefix));
  }
}
