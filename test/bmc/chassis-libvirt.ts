/**
 * ipmi_sim's chassis control wired to a libvirt guest the way a BMC drives a machine, for the power
 * e2e (test/e2e/power-boot.e2e.test.ts). ipmi_sim runs `PROG STATE DOMAIN get power` (answer
 * `power:1`) and `PROG STATE DOMAIN set power 1|0`, `set reset 1`, `set shutdown 1`, `set boot pxe|default`.
 *
 * - power is the domain's state (virsh start / destroy; virsh reaches libvirtd by its unix socket,
 *   which a network namespace does not hide);
 * - the boot device is an override for the NEXT boot only (IPMI's default, and what kvmfleet's
 *   `rebuild --power-cycle` asks for; ipmi_sim passes on the device, never once/persistent): set, the
 *   stored definition gets that device first at once; the power-on that uses it puts the stored
 *   definition back to disk first. The running guest keeps network-first until it is powered off —
 *   its own reboots included — as a BIOS keeps a boot override for one POST and as
 *   test/e2e/guests.ts powerOnFromNetworkOnce does;
 * - a reset with an override pending restarts QEMU (a reset keeps the live boot order, a POST would not);
 * - boot order is per device (<boot order='N'/>, as src/vms/domain-xml.ts writes it) or <os><boot dev=…/>.
 *
 * Every set is appended to STATE/record ("power 1", as test/bmc/ipmi-sim.ts's record() reads it), and
 * every power change that happened to STATE/power-times ("<epoch ms> on|off"), for pacing assertions.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const LIBVIRT_CHASSIS_SCRIPT = `#!/bin/sh
state="$1"; dom="$2"; shift 2
op="$1"; shift
V="virsh -q -c qemu:///system"
running() { [ "$($V domstate "$dom" 2>/dev/null)" = running ]; }
stamp() { echo "$(date +%s%3N) $1" >>"$state/power-times"; }
pending() { [ "$(cat "$state/boot" 2>/dev/null)" = pxe ]; }
# The stored definition with $1 (network or disk) first.
first() {
  xml="$state/domain.xml"
  $V dumpxml --inactive "$dom" >"$xml" || return 1
  if grep -q "<boot order=" "$xml"; then
    if [ "$1" = network ]; then n=1; d=2; else d=1; n=2; fi
    sed -i -e "/<boot order=/d" \\
      -e "0,/<\\/disk>/s#</disk>#<boot order='$d'/></disk>#" \\
      -e "0,/<\\/interface>/s#</interface>#<boot order='$n'/></interface>#" "$xml"
  else
    if [ "$1" = network ]; then b="<boot dev='network'/><boot dev='hd'/>"; else b="<boot dev='hd'/><boot dev='network'/>"; fi
    sed -i -e "/<boot dev=/d" -e "s#</os>#$b</os>#" "$xml"
  fi
  $V define "$xml" >/dev/null
}
# Power on; a pending network-boot override is spent by this boot.
on() {
  running && return 0
  $V start "$dom" >/dev/null || return 1
  stamp on
  if pending; then echo default >"$state/boot"; first disk; fi
}
off() {
  running || return 0
  $V destroy "$dom" >/dev/null || return 1
  stamp off
}
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
      echo "$1 $2" >>"$state/record"
      case "$1" in
        power) if [ "$2" = 1 ]; then on || exit 1; else off || exit 1; fi ;;
        reset)
          if pending; then off && on || exit 1
          else $V reset "$dom" >/dev/null || exit 1; stamp reset; fi ;;
        shutdown) $V shutdown "$dom" >/dev/null || exit 1 ;;
        boot)
          case "$2" in
            pxe) echo pxe >"$state/boot"; first network || exit 1 ;;
            default) echo default >"$state/boot"; first disk || exit 1 ;;
          esac ;;
        *) exit 1 ;;
      esac
      shift 2
    done ;;
  *) exit 1 ;;
esac
`;

export interface PowerChange {
  readonly atMs: number;
  readonly change: 'on' | 'off' | 'reset';
}

/** The power changes the chassis script made for the ipmi_sim whose directory is `simDir`, oldest first. */
export function powerChanges(simDir: string): PowerChange[] {
  const file = join(simDir, 'state', 'power-times');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [at, change] = line.split(' ');
      return { atMs: Number(at), change: change as PowerChange['change'] };
    });
}
