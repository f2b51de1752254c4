#!/usr/bin/env bash
# Installs, when missing, the Debian packages the tests use: libewf's and SleuthKit's readers (the
# independent judges of our images), the file system tools mkdisk.sh needs, Samba for CIFS tests,
# the comparison imagers for benchmarks, ISA-L and liblz4 (built into the daemon), and Chromium for the dashboard's browser test.
set -euo pipefail
need=()
check() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
check ewfverify ewf-tools
check fls sleuthkit
check mkfs.ext4 e2fsprogs
check mkfs.vfat dosfstools
check mcopy mtools
check ntfs-3g ntfs-3g
check sfdisk fdisk
check openssl openssl
check smbd samba
check smbclient smbclient
check unzip unzip
check curl curl
check bc bc
[ -x /usr/bin/time ] || need+=(time)
check zipinfo unzip
check dc3dd dc3dd
check python3 python3
check chromium chromium
check pdftotext poppler-utils
check losetup mount
check pkg-config pkg-config
[ -f /usr/include/libudev.h ] || need+=(libudev-dev)
# Intel ISA-L: formats/deflate's igzip binding (cgo) compresses E01 chunks; igzip is for make bench.
[ -f /usr/include/isa-l/igzip_lib.h ] || need+=(libisal-dev)
check igzip isal
# liblz4: formats/lz4block's binding (cgo) compresses AFF4 lz4 chunks; the lz4 tool checks our blocks.
[ -f /usr/include/lz4.h ] || need+=(liblz4-dev)
check lz4 lz4
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Other jobs on a shared machine may hold the dpkg lock: wait for it instead of failing.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
