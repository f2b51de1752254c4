#!/usr/bin/env bash
# deps.sh: installs the Debian packages `make image`, `make qemu-run` and `make qemu-e2e` need on
# this (build) machine when any is missing. Nothing is downloaded from outside Debian's archive.
set -euo pipefail
pkgs=(mmdebstrap squashfs-tools gdisk dosfstools mtools binutils systemd-boot-efi ovmf
  qemu-system-x86 qemu-utils e2fsprogs kmod cpio ewf-tools samba smbclient)
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
