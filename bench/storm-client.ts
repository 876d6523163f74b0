/**
 * The boot-storm load generator, run inside the client namespace: N simulated machines, each doing
 * what PXE firmware and then iPXE and the installer do, against whichever server is measured:
 *   DHCP as PXE firmware (DISCOVER/REQUEST through a relay, giaddr) → TFTP of the boot file it was
 *   given → DHCP again as iPXE → HTTP GET of the script URL it was given → GET of the Kickstart named
 *   by inst.ks= → the %post callback (POST, or GET where the baseline's file server has no POST).
 * At most `concurrency` machines are in flight. Prints one JSON line: seconds, failures, first errors.
 * Usage: node --import tsx bench/storm-client.ts SERVER_IP[,SERVER_IP] GIADDR COUNT CONCURRENCY MAC_PREFIX CALLBACK_METHOD [FIRST] [BOOT_BYTES]
 * (machine i, from FIRST on, has MAC MAC_PREFIX:hh:hh:hh of i)
 * With BOOT_BYTES > 0 each machine also fetches the kernel and initrd its script names (after the
 * script, before the Kickstart, as iPXE does; following redirects, as iPXE does) and fails unless
 * they add up to BOOT_BYTES; the bytes are counted and dropped, not kept.
 * With two servers (a failover pair) every DHCP message goes to both, as a router with two
 * helper addresses does, and the first answer is taken.
 * Each machine's HTTP requests come from the address DHCP gave it, as a real machine's do (kvmfleet
 * hands an install only to a host's own address): the client makes that address local (a /32 on
 * lo — so the namespace it runs in needs a route back from the servers, which the harnesses set up)
 * and binds to it; it also sends it as X-Forwarded-For, which only a trusted balancer's is believed.
 * The JSON line also has the mean milliseconds per machine of each step (stepMs) and the load
 * generator's own CPU seconds (clientCpuSeconds).
 */
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { request as httpRequest } from 'node:http';
import {
  buildClientMessage,
  type ClientMessageSpec,
  type ClientMessageType,
} from '../src/protocols/dhcp4/client-message.ts';
import { ipv4 } from '../src/protocols/dhcp4/option-codecs.ts';
import { decodePacket, encodePacket, MessageType, type DhcpPacket } from '../src/protocols/dhcp4/packet.ts';
import { OptionCode } from '../src/protocols/dhcp4/options.ts';
import { formatIpv4 } from '../src/protocols/ipv4.ts';
import { stormMac } from './storm-macs.ts';

const [
  serverList = '',
  giaddr = '',
  countText = '100',
  concurrencyText = '50',
  macPrefix = '02:00:00',
  callbackMethod = 'POST',
  firstText = '0',
  bootBytesText = '0',
] = process.argv.slice(2);
const bootBytes = Number(bootBytesText);
const first = Number(firstText);
const servers = serverList.split(',').filter(Boolean);
const serverIp = servers[0]!;
const count = Number(countText);
const concurrency = Number(concurrencyText);

const macOf = (i: number) => stormMac(macPrefix, i);

/** One relay socket for all machines: replies come back to giaddr:67 and are matched by xid. */
class Relay {
  readonly #socket: Socket = createSocket({ type: 'udp4', reuseAddr: true });
  readonly #waiting = new Map<number, (p: DhcpPacket) => void>();
  async open(): Promise<void> {
    this.#socket.on('message', (msg) => {
      try {
        const packet = decodePacket(msg);
        this.#waiting.get(packet.xid)?.(packet);
      } catch {
        /* not ours */
      }
    });
    await new Promise<void>((r) => this.#socket.bind(67, giaddr, () => r()));
  }
  close(): void {
    this.#socket.close();
  }
  /** Sends and waits for a reply of `want`, retrying (2 s, 4 tries) as firmware does. */
  async exchange(packet: DhcpPacket, want: MessageType): Promise<DhcpPacket> {
    const bytes = encodePacket(packet);
    for (let attempt = 0; attempt < 4; attempt++) {
      const reply = await new Promise<DhcpPacket | undefined>((resolve) => {
        const timer = setTimeout(() => (this.#waiting.delete(packet.xid), resolve(undefined)), 2000);
        this.#waiting.set(packet.xid, (p) => {
          const type = p.options.get(OptionCode.MessageType)?.[0];
          if (type !== want && type !== MessageType.Nak) return;
          clearTimeout(timer);
          this.#waiting.delete(packet.xid);
          resolve(p);
        });
        for (const server of servers) this.#socket.send(bytes, 67, server);
      });
      if (reply) {
        if (reply.options.get(OptionCode.MessageType)?.[0] === MessageType.Nak) throw new Error('DHCPNAK');
        return reply;
      }
    }
    throw new Error(`no DHCP ${want === MessageType.Offer ? 'OFFER' : 'ACK'} after 4 tries`);
  }
}

/** What PXE firmware (and, with `ipxe`, iPXE) sends on BIOS through the relay at giaddr. */
const request = (
  mac: string,
  xid: number,
  type: ClientMessageType,
  ipxe: boolean,
  spec: Partial<ClientMessageSpec> = {},
) =>
  buildClientMessage(type, {
    mac,
    xid,
    hops: 1,
    giaddr,
    arch: 0,
    vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
    ...(ipxe ? { userClass: ['iPXE'] } : {}),
    ...spec,
  });

async function dhcp(relay: Relay, mac: string, xid: number, ipxe: boolean): Promise<DhcpPacket> {
  const offer = await relay.exchange(request(mac, xid, MessageType.Discover, ipxe), MessageType.Offer);
  const serverId = offer.options.get(OptionCode.ServerId);
  return relay.exchange(
    request(mac, xid, MessageType.Request, ipxe, {
      requestedIp: offer.yiaddr,
      ...(serverId?.length === 4 ? { serverId: formatIpv4(ipv4.decode(serverId)) } : {}),
    }),
    MessageType.Ack,
  );
}

/**
 * A lock-step TFTP read with blksize 1428 (as PXE ROMs negotiate), from the machine's own address
 * `from` (its offer's yiaddr), as each real machine has one; resolves with the byte count.
 */
function tftpGet(host: string, file: string, from: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    let bytes = 0;
    let expected = 1;
    let blksize = 512;
    let peerPort = 69;
    let timer: NodeJS.Timeout;
    let last: Buffer;
    let tries = 0;
    const send = (b: Buffer, port: number) => {
      last = b;
      socket.send(b, port, host);
      clearTimeout(timer);
      timer = setTimeout(() => (++tries > 5 ? done(new Error(`TFTP ${file}: timed out`)) : send(last, peerPort)), 1000);
    };
    const done = (error?: Error) => {
      clearTimeout(timer);
      socket.close();
      if (error) reject(error);
      else resolve(bytes);
    };
    const ack = (block: number) => Buffer.from([0, 4, (block >> 8) & 255, block & 255]);
    socket.on('message', (msg, rinfo) => {
      peerPort = rinfo.port;
      tries = 0;
      const op = msg.readUInt16BE(0);
      if (op === 6) {
        const fields = msg.subarray(2).toString('latin1').split('\0');
        const i = fields.indexOf('blksize');
        if (i >= 0) blksize = Number(fields[i + 1]);
        return send(ack(0), peerPort);
      }
      if (op === 5) return done(new Error(`TFTP ${file}: ${msg.subarray(4).toString('latin1').replace(/\0.*$/, '')}`));
      if (op !== 3) return;
      const block = msg.readUInt16BE(2);
      if (block !== (expected & 0xffff)) return send(ack((expected - 1) & 0xffff), peerPort);
      bytes += msg.length - 4;
      expected++;
      if (msg.length - 4 < blksize) {
        socket.send(ack(block), peerPort, host);
        return done();
      }
      send(ack(block), peerPort);
    });
    socket.bind({ port: 0, address: from }, () =>
      send(Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${file}\x00octet\x00blksize\x001428\x00`, 'latin1')]), 69),
    );
  });
}

/**
 * Makes a machine's leased address local to this namespace, so requests can come from it. Claims that
 * arrive while one `ip` runs are made together by the next (`ip -batch`): one process per batch, not
 * per machine — in a storm the load generator's own process spawns would otherwise take CPU from the
 * servers it measures.
 */
const claims = new Map<string, Promise<void>>();
let waitingClaims: { ip: string; resolve: () => void; reject: (error: Error) => void }[] = [];
let claiming = false;
function claimAddress(ip: string): Promise<void> {
  let claim = claims.get(ip); // the PXE and the iPXE offer give a machine the same address
  if (!claim) {
    claim = new Promise<void>((resolve, reject) => waitingClaims.push({ ip, resolve, reject }));
    claims.set(ip, claim);
    void claimWaiting();
  }
  return claim;
}
async function claimWaiting(): Promise<void> {
  if (claiming) return;
  claiming = true;
  while (waitingClaims.length > 0) {
    const batch = waitingClaims;
    waitingClaims = [];
    try {
      await ipBatch(batch.map(({ ip }) => `route replace local ${ip}/32 dev lo`));
      for (const claim of batch) claim.resolve();
    } catch (error) {
      for (const claim of batch) {
        claims.delete(claim.ip); // a later machine with that address tries again
        claim.reject(error as Error);
      }
    }
  }
  claiming = false;
}
function ipBatch(commands: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ip -batch: ${code}: ${stderr.trim()}`))));
    child.stdin.end(commands.join('\n') + '\n');
  });
}

function http(url: string, from: string, method = 'GET'): Promise<string> {
  return new Promise((resolve, reject) => {
    if (!URL.canParse(url)) return reject(new Error(`${method} ${JSON.stringify(url)}: not a URL`));
    const req = httpRequest(url, { method, localAddress: from, headers: { 'x-forwarded-for': from } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        (res.statusCode ?? 0) >= 400
          ? reject(new Error(`${method} ${url}: HTTP ${res.statusCode}`))
          : resolve(Buffer.concat(chunks).toString('utf8')),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** GETs `url` from `from`, following up to 3 redirects, and resolves with the body's length (the body is dropped). */
function download(url: string, from: string, redirects = 3): Promise<number> {
  return new Promise((resolve, reject) => {
    if (!URL.canParse(url)) return reject(new Error(`GET ${JSON.stringify(url)}: not a URL`));
    const req = httpRequest(url, { localAddress: from, headers: { 'x-forwarded-for': from } }, (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (status >= 300 && status < 400 && location && redirects > 0) {
        res.resume();
        return resolve(download(new URL(location, url).toString(), from, redirects - 1));
      }
      if (status >= 400) {
        res.resume();
        return reject(new Error(`GET ${url.replace(/\/boot\/files\/[^/]+/, '/boot/files/[token]')}: HTTP ${status}`));
      }
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('error', reject);
      res.on('end', () => resolve(bytes));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The kernel and initrd URLs of an iPXE install script (`kernel URL …`, `initrd [--name N] URL`). */
function bootFileUrls(script: string): string[] {
  const kernel = /^kernel\s+(\S+)/m.exec(script)?.[1];
  const initrd = /^initrd\s+(?:--name\s+\S+\s+)?(\S+)/m.exec(script)?.[1];
  if (!kernel || !initrd) throw new Error(`the script names no kernel or initrd: ${script.slice(0, 200)}`);
  return [kernel, initrd];
}

/** Milliseconds spent in each step, summed over the machines that got through it (where a storm's time goes). */
const steps: Record<string, number> = {};
async function timed<T>(step: string, work: Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await work;
  steps[step] = (steps[step] ?? 0) + performance.now() - started;
  return result;
}

async function machine(relay: Relay, i: number): Promise<void> {
  const mac = macOf(i);
  const firmware = await timed('dhcpPxe', dhcp(relay, mac, 0x10000000 + i * 2, false));
  if (!firmware.file) throw new Error(`${mac}: no boot file for PXE firmware`);
  // A PXE ROM fetches its boot file from the address it was offered: TFTP limits per source apply per machine.
  await timed('claimAddress', claimAddress(firmware.yiaddr));
  await timed(
    'tftp',
    tftpGet(firmware.siaddr !== '0.0.0.0' ? firmware.siaddr : serverIp, firmware.file, firmware.yiaddr),
  );
  const ipxe = await timed('dhcpIpxe', dhcp(relay, mac, 0x10000001 + i * 2, true));
  const scriptUrl = ipxe.file || ipxe.options.get(OptionCode.BootFileName)?.toString('latin1');
  if (!scriptUrl?.startsWith('http')) throw new Error(`${mac}: iPXE was not given a script URL (${scriptUrl})`);
  const address = ipxe.yiaddr;
  await claimAddress(address);
  const script = await timed(
    'script',
    http(scriptUrl.replace('${mac:hexhyp}', mac.replace(/:/g, '-')).replace('${platform}', 'pcbios'), address),
  );
  if (bootBytes > 0) {
    let total = 0;
    for (const url of bootFileUrls(script)) total += await timed('bootFiles', download(url, address)); // one after the other, as iPXE does
    if (total !== bootBytes) throw new Error(`${mac}: kernel + initrd came to ${total} bytes, not ${bootBytes}`);
  }
  const ks = /inst\.ks=(\S+)/.exec(script)?.[1];
  if (!ks) throw new Error(`${mac}: the script names no Kickstart: ${script.slice(0, 200)}`);
  const kickstart = await timed('kickstart', http(ks, address));
  // The callback URL, quoted or not (the Kickstart templates quote it in a shell command).
  const callback = /-X POST '?([^\s']+)/.exec(kickstart)?.[1] ?? /^# callback: (\S+)/m.exec(kickstart)?.[1];
  if (!callback) throw new Error(`${mac}: the Kickstart has no callback`);
  await timed('callback', http(callback, address, callbackMethod));
}

const relay = new Relay();
await relay.open();
// KVMFLEET_STORM_GO=stdin: say so once ready and start on the first line read, so that several load
// generators start their storms together and their own start-up is not counted as the storm's.
if (process.env.KVMFLEET_STORM_GO === 'stdin') {
  console.log(JSON.stringify({ ready: true }));
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause();
}
const started = performance.now();
let next = 0;
let failures = 0;
const errors: string[] = [];
await Promise.all(
  Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const i = first + next++;
      try {
        await machine(relay, i);
      } catch (error) {
        failures++;
        if (errors.length < 5) errors.push((error as Error).message);
      }
    }
  }),
);
relay.close();
const cpu = process.cpuUsage();
console.log(
  JSON.stringify({
    seconds: (performance.now() - started) / 1000,
    failures,
    errors,
    // Mean milliseconds per machine in each step, and this load generator's own CPU time.
    stepMs: Object.fromEntries(Object.entries(steps).map(([step, ms]) => [step, Math.round(ms / Math.max(1, count))])),
    clientCpuSeconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
  }),
);
