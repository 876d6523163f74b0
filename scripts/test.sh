#!/usr/bin/env bash
# The test command: type-check, start a throwaway PostgreSQL (the suite runs on it and on the
# embedded store), run every test file with Node's test runner, then the e2e files (real guests),
# stop PostgreSQL. --only-unit / --only-e2e run one of the two parts.
# Needs PostgreSQL's server binaries (Debian: postgresql); without them it fails, it does not skip.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== type check"
npx tsc -p tsconfig.json
npx tsc -p console/tsconfig.json
echo "== web console build"
npx vite build console --logLevel warn

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

all=$(find test -name '*.test.ts' | sort)
unit=$(echo "$all" | grep -v '^test/e2e/' || true)
e2e=$(echo "$all" | grep '^test/e2e/' || true)
case "${1:-}" in
  --only-unit) e2e="" ;;
  --only-e2e) unit="" ;;
esac
if [ -n "$unit" ]; then
  echo "== tests"
  # shellcheck disable=SC2086
  node --import tsx --test --test-reporter=spec --test-concurrency=2 $unit
fi
if [ -n "$e2e" ]; then
  # Real guests under TCG take both cores: the e2e files run one at a time, after the rest.
  echo "== e2e tests (serial consoles and server log kept in ${TMPDIR:-/tmp}/kvmfleet-e2e-artifacts)"
  # shellcheck disable=SC2086
  node --import tsx --test --test-reporter=spec --test-concurrency=1 $e2e
fi
