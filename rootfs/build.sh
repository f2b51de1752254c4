#!/usr/bin/env bash
# build.sh: builds the appliance disk image (make image) or only a root slot image (make rootfs-image).
#
#   rootfs/build.sh image  OUT.img           GPT disk: ESP (UKI), boot state, root A (+ empty B), data
#   rootfs/build.sh root   OUT.squashfs      a root slot image for `evidenced update` (+ OUT.sha256)
#
# Environment: VERSION (evidenced's version string; default from git), CACHE (var/cache), and
# BROKEN_ROOT=1 (root only: a root without /sbin/init, to test the fallback).
# Debian's kernel and the Debian root are cached under $CACHE; everything comes from Debian's archive
# and the Go module proxy. Runs as root (the root tree keeps its owners).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: build.sh image|root OUT}
out=${2:?usage: build.sh image|root OUT}
export PATH=/usr/local/go/bin:$PATH
CACHE=${CACHE:-var/cache}
VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
kcache=$CACHE/qemu-kernel
work=$(dirname "$out")/work.$(basename "$out")
t0=$(date +%s)
step() { echo "[$(( $(date +%s) - t0 ))s] $*"; }

rootfs/deps.sh
scripts/qemu-kernel.sh "$kcache" >/dev/null
rootfs/debian-root.sh "$CACHE/image/debian-root.tar"
kver=$(ls "$kcache/lib/modules")
rm -rf "$work"
mkdir -p "$work/root"

step "evidenced $VERSION"
CGO_ENABLED=1 nice -n 10 go build -trimpath -ldflags "-X main.Version=$VERSION" -o "$work/evidenced" ./daemon

step "root tree"
r=$work/root
tar -C "$r" --numeric-owner -xpf "$CACHE/image/debian-root.tar"
# Kernel modules the appliance can need (storage, USB, network, file systems, crypto for CIFS);
# graphics, sound, radio, media and the like are left out.
mkdir -p "$r/usr/lib/modules"
cp -a "$kcache/lib/modules/$kver" "$r/usr/lib/modules/"
m=$r/usr/lib/modules/$kver/kernel
rm -rf "$m"/sound "$m"/drivers/{gpu,media,infiniband,staging,bluetooth,iio,isdn,comedi,video,net/wireless,net/ethernet/mellanox,net/ethernet/intel/ice,hid,input/touchscreen,input/joystick,thunderbolt,nfc,mtd} \
  "$m"/net/{wireless,mac80211,bluetooth}
depmod -b "$r" "$kver"
install -m 0755 "$work/evidenced" "$r/usr/bin/evidenced"
install -m 0644 systemd/evidenced.service systemd/evidenced-boot-ok.service "$r/usr/lib/systemd/system/"
install -D -m 0644 rootfs/board-qemu.json "$r/etc/evidenced/board.json"
cp -a rootfs/overlay/. "$r/"
: > "$r/etc/machine-id"
echo evidenced > "$r/etc/hostname"
mkdir -p "$r/var/lib/evidenced"
# The ESP is not mounted: nothing on the appliance writes it but a whole-image reflash.
mkdir -p "$r/etc/systemd/system-generators"
ln -sf /dev/null "$r/etc/systemd/system-generators/systemd-gpt-auto-generator"
systemctl --root="$r" enable evidenced.service evidenced-boot-ok.service systemd-networkd.service >/dev/null 2>&1
systemctl --root="$r" set-default multi-user.target >/dev/null 2>&1
systemctl --root="$r" mask apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service systemd-networkd-wait-online.service >/dev/null 2>&1
if [ "${BROKEN_ROOT:-0}" = 1 ]; then
  rm -f "$r/usr/sbin/init" "$r/sbin/init" 2>/dev/null || true
fi
rm -rf "$r/var/cache/apt" "$r/var/lib/apt/lists" "$r/usr/share/doc" "$r/usr/share/man"

step "squashfs"
sq=$work/root.squashfs
nice -n 10 mksquashfs "$r" "$sq" -comp zstd -Xcompression-level 6 -processors 1 -noappend -quiet -no-progress >/dev/null
if [ "$mode" = root ]; then
  mv "$sq" "$out"
  (cd "$(dirname "$out")" && sha256sum "$(basename "$out")" > "$(basename "$out").sha256")
  rm -rf "$work"
  step "root image $out: $(du -m "$out" | cut -f1) MiB"
  exit 0
fi

step "stage 1 initramfs (u-root)"
# The storage drivers that can hold the appliance disk, in dependency order.
list=$work/stage1.list
kabs=$(cd "$kcache" && pwd)
files=()
for mod in virtio_pci virtio_blk virtio_scsi ahci sd_mod nvme squashfs; do
  modprobe -d "$kcache" -S "$kver" --show-depends "$mod" | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  rel=${ko#"$kabs"/}
  echo "/$rel" >> "$list"
  echo "$ko:$rel"
done > "$work/stage1.files"
while read -r f; do files+=(-files "$f"); done < "$work/stage1.files"
nice -n 10 go tool u-root -o "$work/initrd.cpio" -initcmd=stage1 -uinitcmd= -defaultsh= \
  "${files[@]}" -files "$list:lib/modules/stage1.list" ./rootfs/stage1 2>&1 | grep -v -i 'recommended go\|some packages\|golang.org/doc\|godoc.org/golang' || true

step "unified kernel image"
# Debian bookworm has no ukify: the stub's sections are added with objcopy (the section addresses
# are the usual ones; the kernel is < 16 MiB).
printf 'console=ttyS0,115200 panic=10 quiet loglevel=4 systemd.show_status=auto\n' > "$work/cmdline"
printf 'NAME="evidenced appliance"\nID=evidenced\nVERSION_ID="%s"\nPRETTY_NAME="evidenced %s"\n' "$VERSION" "$VERSION" > "$work/os-release"
objcopy \
  --add-section .osrel="$work/os-release" --change-section-vma .osrel=0x20000 \
  --add-section .cmdline="$work/cmdline" --change-section-vma .cmdline=0x30000 \
  --add-section .linux="$kcache/boot/vmlinuz-$kver" --change-section-vma .linux=0x2000000 \
  --add-section .initrd="$work/initrd.cpio" --change-section-vma .initrd=0x3000000 \
  /usr/lib/systemd/boot/efi/linuxx64.efi.stub "$work/BOOTX64.EFI"

step "partitions"
esp_mib=64 state_mib=1 slot_mib=384 data_mib=1024
rm -f "$work/esp.img" "$work/data.img"
mkfs.vfat -n EVD-ESP -C "$work/esp.img" $((esp_mib * 1024)) >/dev/null
mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$work/esp.img" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
truncate -s "${data_mib}M" "$work/data.img"
mkfs.ext4 -q -F -L evd-data -E root_owner=0:0 "$work/data.img"
total=$((1 + esp_mib + state_mib + 2 * slot_mib + data_mib + 2)) # + the GPT and its backup
rm -f "$out.tmp"
truncate -s "${total}M" "$out.tmp"
sgdisk -o \
  -n 1:1M:+${esp_mib}M -t 1:ef00 -c 1:evd-esp \
  -n 2:0:+${state_mib}M -t 2:8300 -c 2:evd-bootstate \
  -n 3:0:+${slot_mib}M -t 3:8300 -c 3:evd-root-a \
  -n 4:0:+${slot_mib}M -t 4:8300 -c 4:evd-root-b \
  -n 5:0:+${data_mib}M -t 5:8300 -c 5:evd-data "$out.tmp" >/dev/null
put() { # put PARTNUM FILE
  local start
  start=$(sgdisk -i "$1" "$out.tmp" | awk '/^First sector/ {print $3}')
  dd if="$2" of="$out.tmp" bs=512 seek="$start" conv=notrunc,sparse status=none
}
put 1 "$work/esp.img"
put 3 "$sq"
put 5 "$work/data.img"
mv "$out.tmp" "$out"
cp "$sq" "$(dirname "$out")/rootfs.squashfs"
(cd "$(dirname "$out")" && sha256sum rootfs.squashfs > rootfs.squashfs.sha256)
rm -rf "$work"
step "image $out: $(du -m --apparent-size "$out" | cut -f1) MiB apparent, $(du -m "$out" | cut -f1) MiB allocated; root $(du -m "$(dirname "$out")/rootfs.squashfs" | cut -f1) MiB"
