#!/usr/bin/env bash
# Fetches libvirt's RPC protocol definitions (src/remote/remote_protocol.x, src/rpc/virkeepaliveprotocol.x)
# from the Debian source package of the installed libvirt, so that a test can check kvmfleet's
# procedure numbers and limits against them. The tarball's SHA-256 is checked against the .dsc of that
# Debian version. Output: .cache/libvirt-protocol/ (ignored by git). .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.cache/libvirt-protocol
version=$(dpkg-query -W -f='${Version}' libvirt-daemon 2>/dev/null) || { echo "error: libvirt-daemon is not installed" >&2; exit 1; }
upstream=${version#*:}; upstream=${upstream%-*}
if [ -f "$out/VERSION" ] && [ "$(cat "$out/VERSION")" = "$version" ]; then exit 0; fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
dsc=""
for base in http://deb.debian.org/debian http://deb.debian.org/debian-security; do
  if curl -fsS --max-time 60 -o "$tmp/libvirt.dsc" "$base/pool/main/libv/libvirt/libvirt_${version#*:}.dsc" 2>/dev/null; then
    dsc=$base; break
  fi
done
[ -n "$dsc" ] || { echo "error: the Debian source description of libvirt $version was not found on deb.debian.org" >&2; exit 1; }
tarball="libvirt_${upstream}.orig.tar.xz"
want=$(awk -v f="$tarball" '/^Checksums-Sha256:/{s=1;next} /^[A-Z]/{s=0} s && $3==f {print $1}' "$tmp/libvirt.dsc")
[ -n "$want" ] || { echo "error: $tarball is not listed in libvirt's .dsc" >&2; exit 1; }
curl -fsS --max-time 300 -o "$tmp/$tarball" "$dsc/pool/main/libv/libvirt/$tarball"
echo "$want  $tmp/$tarball" | sha256sum -c --quiet - || { echo "error: $tarball does not match the SHA-256 in its .dsc" >&2; exit 1; }
tar -xJf "$tmp/$tarball" -C "$tmp" --wildcards '*/src/remote/remote_protocol.x' '*/src/rpc/virkeepaliveprotocol.x'
mkdir -p "$out"
cp "$tmp"/libvirt-*/src/remote/remote_protocol.x "$tmp"/libvirt-*/src/rpc/virkeepaliveprotocol.x "$out/"
echo "$version" > "$out/VERSION"
echo "libvirt $version protocol definitions in $out"
