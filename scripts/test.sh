#!/usr/bin/env bash
# The test command: type-check, start a throwaway PostgreSQL (the suite runs on it and on the
# embedded store), run every test file with Node's test runner, then the e2e files (real guests),
# stop PostgreSQL, and fail if anything the tests started is still running. --only-unit / --only-e2e
# run one of the two parts; test file names run just those.
# Needs PostgreSQL's server binaries (Debian: postgresql); without them it fails, it does not skip.
set -euo pipefail
cd "$(dirname "$0")/.."

# KVMFLEET_TEST_NO_TYPECHECK=1 skips the type check and console build: for a developer running a few
# files while other work in the same tree does not type-check yet. CI never sets it.
if [ "${KVMFLEET_TEST_NO_TYPECHECK:-}" != 1 ]; then
  echo "== format (prettier --check; npm run format writes)"
  npx prettier --check --log-level warn "**/*.{ts,tsx,js,mjs,cjs}"
  echo "== type check"
  npx tsc -p tsconfig.json
  npx tsc -p console/tsconfig.json
  echo "== web console build"
  npx vite build console --logLevel warn
fi

# libvirt's protocol definitions from its Debian sources (cached in .cache/): a test checks kvmfleet's
# RPC numbers against them.
scripts/fetch-libvirt-protocol.sh

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
  echo "error: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
  exit 1
fi
pgdir=$(mktemp -d /tmp/kvmfleet-test-pg.XXXXXX)
pgport=$(( 20000 + RANDOM % 20000 ))
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$pgdir"
  as_pg=(runuser -u postgres --)
fi
# Every process the suite starts inherits this mark; whatever still carries it at the end was left
# running by a test (libvirt's guests do not inherit it: they are checked by name, as are namespaces).
export KVMFLEET_TEST_RUN="$$-$RANDOM"
baseline_netns=$(ip netns list 2>/dev/null | awk '{print $1}' | sort || true)
cleanup() {
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1 || true
  for daemon in libvirtd virtlogd; do
    if [ -f "$pgdir/$daemon.pid" ]; then kill "$(cat "$pgdir/$daemon.pid")" 2>/dev/null || true; fi
  done
  rm -rf "$pgdir"
}
trap cleanup EXIT
"${as_pg[@]}" "$pgbin/initdb" -D "$pgdir/data" -U kvmfleet --auth=trust -E UTF8 >"$pgdir/initdb.log" 2>&1 || { cat "$pgdir/initdb.log"; exit 1; }
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w \
  -o "-p $pgport -k $pgdir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >/dev/null
export KVMFLEET_TEST_PG_URL="postgres://kvmfleet@127.0.0.1:$pgport/postgres"
# Servers inside network namespaces reach PostgreSQL through its unix socket (their 127.0.0.1 is their own).
export KVMFLEET_TEST_PG_SOCKET_DIR="$pgdir"
echo "== PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on port $pgport"

# One libvirt daemon for every test file (they run in parallel), unless the machine already runs one.
if ! virsh -c test+unix:///default version >/dev/null 2>&1; then
  [ -x /usr/sbin/libvirtd ] || { echo "error: libvirtd not installed (apt-get install libvirt-daemon-system)" >&2; exit 1; }
  /usr/sbin/virtlogd -d -p "$pgdir/virtlogd.pid"   # the qemu driver logs through it
  /usr/sbin/libvirtd -d -p "$pgdir/libvirtd.pid"
  for _ in $(seq 1 50); do virsh -c test+unix:///default version >/dev/null 2>&1 && break; sleep 0.2; done
  echo "== libvirtd started for the tests"
fi

baseline_domains=$(virsh -c qemu:///system list --all --name 2>/dev/null | sort || true)

# The parent of a process (/proc/PID/stat's 4th field; the name in parentheses may hold spaces).
parent_of() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $2}' || true; }

descends_from_us() {
  local p=$1
  while [ -n "$p" ] && [ "$p" -gt 1 ]; do
    [ "$p" = "$$" ] && return 0
    p=$(parent_of "$p")
  done
  return 1
}

# What the suite left behind: processes carrying the mark (but this script and the daemons it
# started for the tests), libvirt domains and network namespaces that were not there before.
leftovers() {
  local keep=" $$ "
  for f in "$pgdir/virtlogd.pid" "$pgdir/libvirtd.pid"; do [ -f "$f" ] && keep+="$(cat "$f") "; done
  local pgmaster
  pgmaster=$(head -n 1 "$pgdir/data/postmaster.pid" 2>/dev/null || true)
  local found=()
  for environ in /proc/[0-9]*/environ; do
    local pid=${environ#/proc/}; pid=${pid%/environ}
    case "$keep" in *" $pid "*) continue ;; esac
    # This script's own children (this function runs in a subshell) and PostgreSQL's processes are
    # not leftovers. A test's orphan is no descendant of this script: its parent test file has exited.
    descends_from_us "$pid" && continue
    if [ -n "$pgmaster" ] && { [ "$pid" = "$pgmaster" ] || [ "$(parent_of "$pid")" = "$pgmaster" ]; }; then continue; fi
    if { tr '\0' '\n' <"$environ"; } 2>/dev/null | grep -qx "KVMFLEET_TEST_RUN=$KVMFLEET_TEST_RUN"; then
      found+=("process $pid: $({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | cut -c1-160)")
    fi
  done
  local domains
  domains=$(comm -13 <(echo "$baseline_domains") <(virsh -c qemu:///system list --all --name 2>/dev/null | sort) | grep -v '^$' || true)
  for d in $domains; do found+=("libvirt domain: $d ($(virsh -c qemu:///system domstate "$d" 2>/dev/null | head -n 1))"); done
  local netns
  netns=$(comm -13 <(echo "$baseline_netns") <(ip netns list 2>/dev/null | awk '{print $1}' | sort) | grep -v '^$' || true)
  for n in $netns; do found+=("network namespace: $n"); done
  printf '%s\n' "${found[@]}"
}

check_leftovers() {
  local left=""
  # Give processes a test just signalled a moment to exit.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    left=$(leftovers)
    [ -z "$left" ] && return 0
    sleep 1
  done
  echo "error: the tests left these running (each test must stop what it started, also when it fails):" >&2
  echo "$left" | sed 's/^/  /' >&2
  return 1
}

all=$(find test -name '*.test.ts' | sort)
unit=$(echo "$all" | grep -v '^test/e2e/' || true)
e2e=$(echo "$all" | grep '^test/e2e/' || true)
case "${1:-}" in
  --only-unit) e2e="" ;;
  --only-e2e) unit="" ;;
  ?*) # named test files only (e.g. scripts/test.sh test/vms/kvm-probe.test.ts)
    unit=$(printf '%s\n' "$@" | grep -v '^test/e2e/' || true)
    e2e=$(printf '%s\n' "$@" | grep '^test/e2e/' || true) ;;
esac
status=0
if [ -n "$unit" ]; then
  echo "== tests"
  # shellcheck disable=SC2086
  node --import tsx --test --test-reporter=spec --test-concurrency=2 $unit || status=$?
  check_leftovers || status=1
fi
if [ -n "$e2e" ] && [ "$status" = 0 ]; then
  # Real guests under TCG take both cores: the e2e files run one at a time, after the rest.
  echo "== e2e tests (serial consoles and server log kept in ${TMPDIR:-/tmp}/kvmfleet-e2e-artifacts)"
  # shellcheck disable=SC2086
  node --import tsx --test --test-reporter=spec --test-concurrency=1 $e2e || status=$?
  check_leftovers || status=1
fi
exit "$status"
