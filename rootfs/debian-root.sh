#!/usr/bin/env bash
# debian-root.sh OUT.tar: the Debian part of the appliance root, made by mmdebstrap from Debian's
# archive (minbase + what the appliance runs). Cached: rebuilt only when the package list changes.
set -euo pipefail
out=${1:?usage: debian-root.sh OUT.tar}
# systemd/udev/kmod: the init system, device events, module loading. libudev1, libisal2, liblz4-1:
# the daemon links them (go-udev; ISA-L's igzip deflates E01 chunks; liblz4 compresses AFF4's).
# e2fsprogs: fsck of the data partition. qemu-guest-agent: starts only when a QEMU guest-agent port
# exists (udev rule), so it is inert on appliance hardware; the QEMU end-to-end test drives the guest
# with it. No compilers, no package manager use at run time.
pkgs=systemd,systemd-sysv,udev,libudev1,libisal2,liblz4-1,kmod,e2fsprogs,qemu-guest-agent
key=$(printf '%s bookworm minbase v1' "$pkgs" | sha256sum | cut -c1-16)
if [ -f "$out" ] && [ "$(cat "$out.key" 2>/dev/null)" = "$key" ]; then
  exit 0
fi
mkdir -p "$(dirname "$out")/tmp"
TMPDIR=$(cd "$(dirname "$out")/tmp" && pwd) nice -n 10 mmdebstrap --variant=minbase --format=tar --include="$pkgs" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  bookworm "$out.tmp" http://deb.debian.org/debian
mv "$out.tmp" "$out"
echo "$key" > "$out.key"
