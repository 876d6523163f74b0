/**
 * A TEST DOUBLE OF THE INSTALLER (Anaconda cannot be had here): Debian's cloud kernel with a busybox
 * initramfs built by the test. It does the part of an install that kvmfleet can observe:
 *   reads inst.ks= (or ks=) from the kernel command line, DHCPs, fetches the Kickstart over HTTP,
 *   takes the install tree from its `url --url=` line, fetches the disk image from the tree, writes
 *   it to /dev/vda, runs the Kickstart's %post (which calls kvmfleet back) and reboots.
 *   `kvmfleet.test.hold=N` on the command line makes it take N s more, as a real install would.
 * `curl` and `systemctl` in %post are shims over busybox (wget; a no-op that says what it skipped).
 * Every step prints "kvmfleet-installer-double: …" on the serial console; a failed step prints
 * "… FAILED: why" and powers the guest off, so the test sees it at once.
 */
import { buildBusyboxInitramfs, INIT_PROLOGUE, type Kernel } from '../helpers/busybox-initramfs.ts';

export { findCloudKernel } from '../helpers/busybox-initramfs.ts';

/** Where the double expects the disk image in the install tree. */
export const TREE_DISK_IMAGE = 'kvmfleet-test/disk.img';
export const INSTALLER_SAYS = 'kvmfleet-installer-double:';

/** The virtio PCI transport, NIC and disk; loaded with their dependencies first. */
const WANTED_MODULES = ['virtio_pci', 'virtio_net', 'virtio_blk'];

const INIT = `${INIT_PROLOGUE}say() { echo "${INSTALLER_SAYS} $*"; }
fail() { say "FAILED: $*"; sleep 1; poweroff -f; }
say "started (a test double of the installer, not Anaconda)"
for m in $(cat /lib/modules/order); do insmod "/lib/modules/$m.ko" || fail "insmod $m"; done
ks=""
hold=0
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    inst.ks=*) ks="\${arg#inst.ks=}" ;;
    ks=*) ks="\${arg#ks=}" ;;
    kvmfleet.test.hold=*) hold="\${arg#kvmfleet.test.hold=}" ;;
  esac
done
[ -n "$ks" ] || fail "no inst.ks= on the kernel command line"
for i in $(seq 1 50); do [ -e /sys/class/net/eth0 ] && [ -b /dev/vda ] && break; sleep 0.2; done
[ -b /dev/vda ] || fail "no disk /dev/vda"
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -n -q -t 20 -T 2 -s /etc/udhcpc.script || fail "no DHCP lease"
say "address $(ip -4 -o addr show dev eth0 | awk '{print $4}')"
wget -q -O /tmp/ks.cfg "$ks" || fail "could not fetch the Kickstart $ks"
say "fetched the Kickstart ($(wc -c </tmp/ks.cfg) bytes)"
if [ "$hold" -gt 0 ]; then say "holding $hold s (the length of a real install)"; sleep "$hold"; fi
tree=$(sed -n 's/^url --url=\\([^ ]*\\).*/\\1/p' /tmp/ks.cfg)
[ -n "$tree" ] || fail "the Kickstart names no install tree (url --url=)"
wget -q -O /tmp/disk.img "$tree/${TREE_DISK_IMAGE}" || fail "could not fetch ${TREE_DISK_IMAGE} from $tree"
dd if=/tmp/disk.img of=/dev/vda bs=1M conv=fsync 2>/dev/null || fail "could not write the disk"
sync
say "wrote the disk image from the install tree to /dev/vda"
sed -n '/^%post/,/^%end/p' /tmp/ks.cfg | sed '1d;$d' >/tmp/post.sh
sh -e /tmp/post.sh || fail "%post failed"
say "install complete; rebooting"
sync
reboot -f
`;

const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/\${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "\${router%% *}" dev "$interface"
    ;;
esac
exit 0
`;

/**
 * Enough of curl for a Kickstart %post: "curl [flags] [-X METHOD] [-o FILE] [-w '%{http_code}'] URL",
 * with --retry. With -w it prints the status as curl does (000 when no answer came).
 */
const CURL_SHIM = `#!/bin/sh
method=GET; url=""; retries=0; out=""; format=""
while [ $# -gt 0 ]; do
  case "$1" in
    -X|--request) method="$2"; shift ;;
    --retry) retries="$2"; shift ;;
    -o|--output) out="$2"; shift ;;
    -w|--write-out) format="$2"; shift ;;
    --retry-delay|--max-time|-m|-H|--header|-d|--data) shift ;;
    http://*|https://*) url="$1" ;;
  esac
  shift
done
[ -n "$url" ] || { echo "curl (shim): no URL" >&2; exit 2; }
fetch() {
  if [ "$method" = POST ]; then wget -q -O "\${out:--}" --post-data '' "$url" 2>/tmp/curl-shim.err
  else wget -q -O "\${out:--}" "$url" 2>/tmp/curl-shim.err; fi
}
i=0
while :; do
  if fetch; then [ -n "$format" ] && printf 200; exit 0; fi
  cat /tmp/curl-shim.err >&2
  if [ -n "$format" ]; then
    code=$(awk '{ for (i = 1; i < NF; i++) if ($i ~ /^HTTP/) { print $(i + 1); exit } }' /tmp/curl-shim.err)
    printf '%s' "\${code:-000}"; exit 22
  fi
  i=$((i + 1)); [ "$i" -gt "$retries" ] && exit 22
  sleep 1
done
`;

const SYSTEMCTL_SHIM = `#!/bin/sh
echo "systemctl (shim): skipped: systemctl $*"
`;

/** Builds the installer double's initramfs (newc cpio, gzip) and returns its bytes. */
export function buildInstallerInitramfs(kernel: Kernel): Promise<Buffer> {
  return buildBusyboxInitramfs(kernel, INIT, WANTED_MODULES, {
    'etc/udhcpc.script': UDHCPC_SCRIPT,
    'usr/bin/curl': CURL_SHIM,
    'usr/bin/systemctl': SYSTEMCTL_SHIM,
  });
}
