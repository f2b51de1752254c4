#!/usr/bin/env bash
# qemu-kernel.sh DIR: puts a Debian kernel (boot/vmlinuz-*, lib/modules/* with modules.dep) in DIR
# for the QEMU tests, and installs QEMU, cpio and kmod when missing. The kernel package is only
# unpacked, never installed on this machine.
set -euo pipefail
dir=${1:?usage: qemu-kernel.sh DIR}
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v cpio >/dev/null || need+=(cpio)
command -v depmod >/dev/null || need+=(kmod)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ls "$dir"/lib/modules/*/modules.dep >/dev/null 2>&1; then
  exit 0
fi
pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
[ -n "$pkg" ] || { echo "no linux-image package behind linux-image-amd64" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download "$pkg" 2>/dev/null)
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
dpkg-deb -x "$tmp"/"$pkg"_*.deb "$dir.tmp"
depmod -b "$dir.tmp" "$(ls "$dir.tmp/lib/modules")"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "kernel $pkg unpacked in $dir"
