#!/usr/bin/env bash
# gpio-sim.sh KERNEL_DIR OUT_DIR: builds the kernel's gpio-sim driver as an out-of-tree module for
# the kernel that scripts/qemu-kernel.sh unpacked in KERNEL_DIR (Debian's kernels have neither
# gpio-sim nor gpio-mockup), from Debian's linux-source and linux-headers packages for that kernel,
# and leaves OUT_DIR/<kernel version>/gpio-sim-oot.ko. Nothing prebuilt is downloaded. The QEMU
# tests give the board's ports power lines on a gpio-sim chip.
set -euo pipefail
kdir=${1:?usage: gpio-sim.sh KERNEL_DIR OUT_DIR}
out=${2:?usage: gpio-sim.sh KERNEL_DIR OUT_DIR}
kver=$(ls "$kdir/lib/modules")
[ "$(echo "$kver" | wc -w)" = 1 ] || { echo "$kdir/lib/modules: want one kernel, got: $kver" >&2; exit 1; }
ko="$out/$kver/gpio-sim-oot.ko"
[ -f "$ko" ] && exit 0
series=$(echo "$kver" | cut -d. -f1,2) # 6.1.0-57-amd64 -> 6.1
headers=/usr/src/linux-headers-$kver
source=/usr/src/linux-source-$series.tar.xz
need=()
[ -d "$headers" ] || need+=("linux-headers-$kver")
[ -f "$source" ] || need+=("linux-source-$series")
command -v make >/dev/null || need+=(make)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
top=linux-source-$series
tar -xJf "$source" -C "$tmp" "$top/drivers/gpio/gpio-sim.c" "$top/drivers/gpio/gpiolib.h" "$top/kernel/irq/irq_sim.c"
mkdir "$tmp/m"
cp "$tmp/$top/drivers/gpio/gpio-sim.c" "$tmp/$top/drivers/gpio/gpiolib.h" "$tmp/$top/kernel/irq/irq_sim.c" "$tmp/m/"
# irq_sim.c calls handle_simple_irq(irq_to_desc(irq)); irq_to_desc is not exported to modules,
# generic_handle_irq(irq) is and does the same for this one-level simulated interrupt.
sed -i 's/handle_simple_irq(irq_to_desc(\([^)]*\)))/generic_handle_irq(\1)/' "$tmp/m/irq_sim.c"
grep -q 'generic_handle_irq' "$tmp/m/irq_sim.c" || { echo "irq_sim.c: the irq_to_desc call was not found to patch" >&2; exit 1; }
printf 'obj-m := gpio-sim-oot.o\ngpio-sim-oot-y := gpio-sim.o irq_sim.o\n' > "$tmp/m/Kbuild"
make -s -C "$headers" M="$tmp/m" modules
mkdir -p "$out/$kver"
cp "$tmp/m/gpio-sim-oot.ko" "$ko.tmp"
mv "$ko.tmp" "$ko"
echo "gpio-sim built for $kver: $ko"
