#!/usr/bin/env bash
# Installs, when missing, the Debian packages the daemon is built against: it is cgo over libudev
# (hal/linux, through go-udev), found by pkg-config; Intel ISA-L, the E01 deflate engine
# (formats/deflate; -tags noisal builds without it); and liblz4, the AFF4 lz4 engine
# (formats/lz4block; -tags noliblz4 builds without it).
set -euo pipefail
need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
[ -f /usr/include/libudev.h ] || need+=(libudev-dev)
[ -f /usr/include/isa-l.h ] || need+=(libisal-dev)
[ -f /usr/include/lz4.h ] || need+=(liblz4-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing build dependencies: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Other jobs may hold the dpkg lock: wait for it instead of failing.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
