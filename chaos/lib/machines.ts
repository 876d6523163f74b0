/**
 * Simulated machines for the chaos scenarios, run inside the lab's client namespace:
 *   node --import tsx chaos/lib/machines.ts @plan.json
 * Each machine does what iPXE and then the installer do — DHCP through the relay (giaddr), the iPXE
 * script from its leased address, the Kickstart it names, the build callback — and, like a real
 * machine, starts over from DHCP after a failed step until its deadline. The callback is either one
 * POST (`post`) or the rendered Kickstart's own %post run by sh with the real curl (`kickstart`), so
 * its retry loop is what is tested. Every observation is one JSON line on stdout as it happens
 * (a server SIGKILLed mid-run leaves them all): `ack`, `kickstart`, `built` (the callback's 2xx),
 * `disk` (told to boot its disk), `fail` (a step that failed, and why), and `done` at the end.
 * (bench/storm-client.ts does the whole chain too, but runs at import and prints only totals.)
 */
import { execFile, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { promisify } from 'node:util';
import { buildClientMessage } from '../../src/protocols/dhcp4/client-message.ts';
import { ipv4 } from '../../src/protocols/dhcp4/option-codecs.ts';
import { OptionCode } from '../../src/protocols/dhcp4/options.ts';
import { decodePacket, encodePacket, MessageType, type DhcpPacket } from '../../src/protocols/dhcp4/packet.ts';
import { formatIpv4 } from '../../src/protocols/ipv4.ts';

export interface MachinePlan {
  readonly server: string;
  readonly giaddr: string;
  readonly machines: readonly { readonly mac: string; readonly known: boolean }[];
  /** Machine i starts at i × staggerMs (a bounded arrival rate). */
  readonly staggerMs: number;
  /** A failed step starts the machine over after this long. */
  readonly retryMs: number;
  /** No machine starts over after this (ms from start). */
  readonly deadlineMs: number;
  readonly callback: 'post' | 'kickstart';
  /** kickstart: machine i runs %post this long after fetching its Kickstart (installs take time). */
  readonly holdMs?: number;
  readonly holdStepMs?: number;
  /** kickstart: a PATH directory whose `systemctl` and `chkconfig` only say what they skipped (run-machines.ts makes it). */
  readonly shimDir?: string;
}

export type MachineEvent =
  | { ev: 'ack'; mac: string; ip: string; t: number }
  | { ev: 'kickstart'; mac: string; t: number }
  | { ev: 'built'; mac: string; status: number; refused?: number; t: number }
  | { ev: 'disk'; mac: string; t: number }
  | { ev: 'fail'; mac: string; step: string; error: string; t: number }
  | { ev: 'done'; t: number };

const started = Date.now();
type Untimed<E> = E extends unknown ? Omit<E, 't'> : never;
const emit = (event: Untimed<MachineEvent>): void => {
  process.stdout.write(`${JSON.stringify({ ...event, t: Date.now() - started })}\n`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One relay socket for all machines (replies come to giaddr:67), matched by xid. */
class Relay {
  readonly #socket: Socket = createSocket({ type: 'udp4', reuseAddr: true });
  readonly #waiting = new Map<number, (p: DhcpPacket) => void>();
  constructor(
    readonly giaddr: string,
    readonly server: string,
  ) {}
  async open(): Promise<void> {
    this.#socket.on('message', (msg) => {
      try {
        const packet = decodePacket(msg);
        this.#waiting.get(packet.xid)?.(packet);
      } catch {
        /* not DHCP */
      }
    });
    this.#socket.on('error', (error) => emit({ ev: 'fail', mac: '-', step: 'relay socket', error: error.message }));
    await new Promise<void>((r) => this.#socket.bind(67, this.giaddr, () => r()));
  }
  close(): void {
    this.#socket.close();
  }
  /** Sends and waits for `want` (or a NAK), 4 tries 2 s apart as PXE firmware does. */
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
        this.#socket.send(bytes, 67, this.server);
      });
      if (reply) {
        if (reply.options.get(OptionCode.MessageType)?.[0] === MessageType.Nak) throw new Error('DHCPNAK');
        return reply;
      }
    }
    throw new Error(`no ${want === MessageType.Offer ? 'OFFER' : 'ACK'} after 4 tries`);
  }
}

let xids = Math.floor(Math.random() * 0x7fffffff);
/** What iPXE on BIOS asks with: arch 0, a PXEClient vendor class, user class iPXE (as RFC 3004 items). */
const ipxe = { arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', userClass: ['iPXE'] } as const;

async function dhcp(relay: Relay, mac: string): Promise<DhcpPacket> {
  const xid = xids++ >>> 0;
  const offer = await relay.exchange(
    buildClientMessage(MessageType.Discover, { mac, xid, giaddr: relay.giaddr, ...ipxe }),
    MessageType.Offer,
  );
  const serverId = offer.options.get(OptionCode.ServerId);
  return relay.exchange(
    buildClientMessage(MessageType.Request, {
      mac,
      xid,
      giaddr: relay.giaddr,
      requestedIp: offer.yiaddr,
      ...(serverId?.length === 4 ? { serverId: formatIpv4(ipv4.decode(serverId)) } : {}),
      ...ipxe,
    }),
    MessageType.Ack,
  );
}

const claimed = new Set<string>();
/** Makes a leased address local to this namespace, so the machine's requests come from it. */
async function claim(ip: string): Promise<void> {
  if (claimed.has(ip)) return;
  await promisify(execFile)('ip', ['route', 'replace', 'local', `${ip}/32`, 'dev', 'lo']);
  claimed.add(ip);
}

function http(url: string, from: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    if (!URL.canParse(url)) return reject(new Error(`${method} ${JSON.stringify(url)}: not a URL`));
    const req = httpRequest(url, { method, localAddress: from, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Runs the Kickstart's %post section as the installer would (sh -e), with the real curl; resolves with its output. */
function runPost(
  kickstart: string,
  shims: string,
  deadlineAt: number,
): Promise<{ code: number | null; output: string }> {
  const post = /^%post[^\n]*\n([\s\S]*?)^%end/m.exec(kickstart)?.[1];
  if (post === undefined) return Promise.resolve({ code: -1, output: 'no %post section' });
  return new Promise((resolve) => {
    const child = spawn('sh', ['-e', '-c', post], {
      env: { ...process.env, PATH: `${shims}:${process.env.PATH ?? ''}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    // The %post loop is bounded by the build timeout (hours); the scenario's deadline ends it sooner.
    const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(deadlineAt - Date.now(), 1000));
    child.on('exit', (code) => (clearTimeout(timer), resolve({ code, output })));
  });
}

async function machine(
  relay: Relay,
  plan: MachinePlan,
  index: number,
  mac: string,
  known: boolean,
  shims: string,
): Promise<void> {
  const deadlineAt = started + plan.deadlineMs;
  await sleep(index * plan.staggerMs);
  let step = 'dhcp';
  while (Date.now() < deadlineAt) {
    try {
      step = 'dhcp';
      const ack = await dhcp(relay, mac);
      emit({ ev: 'ack', mac, ip: ack.yiaddr });
      if (!known) return;
      await claim(ack.yiaddr);
      step = 'script';
      const scriptUrl = (ack.file || ack.options.get(OptionCode.BootFileName)?.toString('latin1') || '')
        .replace('${mac:hexhyp}', mac.replace(/:/g, '-'))
        .replace('${platform}', 'pcbios');
      const script = await http(scriptUrl, ack.yiaddr);
      if (script.status !== 200) throw new Error(`script: HTTP ${script.status}`);
      if (/is built; booting the local disk/.test(script.body)) return emit({ ev: 'disk', mac });
      const ks = /inst\.ks=(\S+)/.exec(script.body)?.[1];
      if (!ks) throw new Error(`script names no Kickstart (${script.body.split('\n')[1] ?? ''})`);
      step = 'kickstart';
      const kickstart = await http(ks, ack.yiaddr);
      if (kickstart.status !== 200) throw new Error(`kickstart: HTTP ${kickstart.status}`);
      emit({ ev: 'kickstart', mac });
      step = 'callback';
      if (plan.callback === 'post') {
        const callback = /-X POST '?([^\s']+)/.exec(kickstart.body)?.[1];
        if (!callback) throw new Error('the Kickstart has no callback');
        const answer = await http(callback, ack.yiaddr, 'POST');
        if (answer.status < 200 || answer.status > 299) throw new Error(`callback: HTTP ${answer.status}`);
        return emit({ ev: 'built', mac, status: answer.status });
      }
      await sleep((plan.holdMs ?? 0) + index * (plan.holdStepMs ?? 0));
      const { code, output } = await runPost(kickstart.body, shims, deadlineAt);
      // curl --show-error says why each failed attempt failed; the loop's retries are counted from that.
      if (/kvmfleet: build reported/.test(output))
        return emit({ ev: 'built', mac, status: 200, refused: (output.match(/^curl: \(/gm) ?? []).length });
      // The installer has run %post once: it reboots into its disk whatever the callback said.
      return emit({
        ev: 'fail',
        mac,
        step: '%post',
        error: `exit ${code}: ${output.trim().split('\n').slice(-2).join(' | ').slice(0, 300)}`,
      });
    } catch (error) {
      emit({ ev: 'fail', mac, step, error: (error as Error).message.slice(0, 300) });
      await sleep(plan.retryMs);
    }
  }
}

async function main(plan: MachinePlan): Promise<void> {
  const relay = new Relay(plan.giaddr, plan.server);
  await relay.open();
  // %post must not touch this machine's services: its systemctl and chkconfig are shims.
  const shims = plan.shimDir ?? '/nonexistent';
  try {
    await Promise.all(plan.machines.map((m, i) => machine(relay, plan, i, m.mac, m.known, shims)));
  } finally {
    relay.close();
  }
  emit({ ev: 'done' });
}

const arg = process.argv[2] ?? '';
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!))
  void main(JSON.parse(arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg) as MachinePlan);
