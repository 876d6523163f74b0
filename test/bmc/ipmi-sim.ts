/**
 * A real IPMI LAN server for tests: OpenIPMI's ipmi_sim, listening inside a test namespace, with a
 * minimal lan.conf and emu file written here (Debian ships none) and a chassis-control script that
 * keeps the machine's power and next boot device in files and appends every request to a record.
 * Layout after upstream's lanserv/lan.conf, ipmisim1.emu and ipmi_sim_chassiscontrol.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Namespace } from '../helpers/netns.ts';

export interface IpmiSim {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  readonly dir: string;
  /** ipmi_sim's own output so far. */
  readonly output: string[];
  /** `power 1`, `boot pxe`, `reset 1` … in the order ipmi_sim asked the chassis-control script. */
  record(): string[];
  power(): 'on' | 'off';
  setPower(state: 'on' | 'off'): void;
  stop(): Promise<void>;
}

// ipmi_sim runs `PROG get power` and expects `power:1`; `PROG set power 0`, `set boot pxe`, `set reset 1`.
const CHASSIS_SCRIPT = `#!/bin/sh
state="$1"; shift
op="$1"; shift
case "$op" in
  get)
    for p in "$@"; do
      case "$p" in
        power) v=$(cat "$state/power" 2>/dev/null || echo 0) ;;
        boot) v=$(cat "$state/boot" 2>/dev/null || echo default) ;;
        *) echo "Invalid parameter: $p"; exit 1 ;;
      esac
      echo "$p:$v"
    done ;;
  set)
    while [ $# -ge 2 ]; do
      echo "$1 $2" >> "$state/record"
      case "$1" in
        power|boot) echo "$2" > "$state/$1" ;;
        reset|shutdown) ;;
        *) exit 1 ;;
      esac
      shift 2
    done ;;
  *) exit 1 ;;
esac
`;

/**
 * The same contract, wired to a libvirt guest (qemu:///system; virsh reaches libvirtd by its unix
 * socket, which a network namespace does not hide): power is the domain's state (start, destroy,
 * reset, ACPI shutdown), the boot device is the persistent definition's boot order, which the
 * guest takes at its next start. ipmi_sim passes on the device only, not once/persistent or EFI.
 */
const LIBVIRT_CHASSIS_SCRIPT = `#!/bin/sh
state="$1"; dom="$2"; shift 2
op="$1"; shift
V="virsh -q -c qemu:///system"
running() { [ "$($V domstate "$dom" 2>/dev/null)" = running ]; }
case "$op" in
  get)
    for p in "$@"; do
      case "$p" in
        power) if running; then v=1; else v=0; fi ;;
        boot) v=$(cat "$state/boot" 2>/dev/null || echo default) ;;
        *) echo "Invalid parameter: $p"; exit 1 ;;
      esac
      echo "$p:$v"
    done ;;
  set)
    while [ $# -ge 2 ]; do
      echo "$1 $2" >> "$state/record"
      case "$1" in
        power) if [ "$2" = 1 ]; then running || $V start "$dom" >/dev/null; else ! running || $V destroy "$dom" >/dev/null; fi ;;
        reset) $V reset "$dom" >/dev/null ;;
        shutdown) $V shutdown "$dom" >/dev/null ;;
        boot)
          echo "$2" > "$state/boot"
          case "$2" in pxe) order="network hd" ;; default) order="hd network" ;; *) order="" ;; esac
          if [ -n "$order" ]; then
            boots=""; for d in $order; do boots="$boots<boot dev='$d'/>"; done
            $V dumpxml --inactive "$dom" | sed -e "/<boot dev=/d" -e "s#</os>#$boots</os>#" > "$state/domain.xml" && $V define "$state/domain.xml" >/dev/null
          fi ;;
        *) exit 1 ;;
      esac
      shift 2
    done ;;
  *) exit 1 ;;
esac
`;

const EMU = `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
`;

export async function startIpmiSim(
  ns: Namespace,
  options: {
    username?: string;
    password?: string;
    port?: number;
    libvirtDomain?: string;
    /** A chassis-control script of the caller's, run as this file's scripts are (test/bmc/chassis-libvirt.ts). */
    chassisScript?: string;
  } = {},
): Promise<IpmiSim> {
  const dir = mkdtempSync(join(tmpdir(), 'kvmt-ipmisim-'));
  const username = options.username ?? 'admin';
  const password = options.password ?? 'Sim-pass-0417';
  const port = options.port ?? 623;
  const state = join(dir, 'state');
  writeFileSync(
    join(dir, 'chassis'),
    options.chassisScript ?? (options.libvirtDomain ? LIBVIRT_CHASSIS_SCRIPT : CHASSIS_SCRIPT),
  );
  chmodSync(join(dir, 'chassis'), 0o755);
  rmSync(state, { recursive: true, force: true });
  writeFileSync(join(dir, 'emu'), EMU);
  mkdirSync(state);
  writeFileSync(join(state, 'power'), '0\n');
  writeFileSync(join(state, 'record'), '');
  writeFileSync(
    join(dir, 'lan.conf'),
    `name "kvmtest"
set_working_mc 0x20
  startlan 1
    addr ${ns.ip} ${port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "${join(dir, 'chassis')} ${state}${options.libvirtDomain ? ` ${options.libvirtDomain}` : ''}"
  startnow false
  user 2 true "${username}" "${password}" admin 10 none md2 md5 straight
`,
  );
  const child: ChildProcess = ns.spawn(
    'ipmi_sim',
    ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'emu'), '-s', join(dir, 'sim-state'), '-n', '-p'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  // Ready once it listens on the address (ss inside the namespace), within 10 s.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { stdout } = await ns.exec('ss', ['-Hulnp']);
    if (stdout.includes(`${ns.ip}:${port}`)) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`ipmi_sim did not start: ${output.join('')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host: ns.ip,
    port,
    username,
    password,
    dir,
    output,
    record: () =>
      existsSync(join(state, 'record')) ? readFileSync(join(state, 'record'), 'utf8').split('\n').filter(Boolean) : [],
    power: () => (readFileSync(join(state, 'power'), 'utf8').trim() === '1' ? 'on' : 'off'),
    setPower: (s) => writeFileSync(join(state, 'power'), s === 'on' ? '1\n' : '0\n'),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
