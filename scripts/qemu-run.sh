#!/usr/bin/env bash
# qemu-run.sh: boots the appliance image in QEMU (OVMF, q35; KVM when usable, else TCG) with evidence
# disks on each bus, the API forwarded to 127.0.0.1:$API_PORT and a Samba share of this machine at the
# guest's 10.0.2.2:$SMB_PORT. The image itself is never written: the guest runs on a qcow2 overlay.
#
# Environment (all optional):
#   IMG       the disk image (var/image/evidenced.img)
#   STATE     directory for the overlay, drives, sockets, logs (var/qemu)
#   FRESH=0   keep the overlay of the last run (power-loss and update tests boot the same disk again)
#   API_PORT  host port forwarded to the guest's API on port 80 (8080)
#   SMB_PORT  port of this machine's Samba server the guest reaches as 10.0.2.2 (4450)
#   SMBD=0    do not start a Samba server (the caller has one)
#   SERIAL    serial console destination: "stdio" (default) or a file path
#   SLOW_BPS  read limit in bytes/s of the slow drives (SATA2 and the USB hot-plug drive; 4000000)
#   DRIVES_ONLY=1  only make the evidence drive images in $STATE/drives and exit
# QMP is at $STATE/qmp.sock, the guest agent at $STATE/qga.sock.
#
# The topology (fixed PCI addresses; rootfs/board-qemu.json names the ports by these attach points):
#   SATA1, SATA2  q35's AHCI (00:1f.2) ports 1 and 2: ide-hd, SATA2 a slow drive
#   SAS1, SAS2    LSI SAS1068 (mptsas1068, 00:05.0) phys 0 and 1: scsi-hd with a SAS address; SAS2 empty
#   USB1, USB2    xHCI (00:06.0) ports 1 and 2: a USB bridge (usb-bot + scsi-hd) on USB1; USB2 empty
#   NVME1, NVME2  NVMe behind PCIe root ports (00:07.0 → 01:00.0, 00:08.0 → 02:00.0); NVME2 empty
# Drives for hot-plug through QMP (backends only, no device): "hotusb" (slow) and "hotnvme", e.g.
#   {"execute":"device_add","arguments":{"driver":"usb-storage","bus":"xhci.0","port":"2","drive":"hotusb","id":"hotusb","serial":"QHOTUSB1"}}
#   {"execute":"device_add","arguments":{"driver":"nvme","bus":"rp2","drive":"hotnvme","id":"hotnvme","serial":"QHOTNVME1"}}
set -euo pipefail
cd "$(dirname "$0")/.."
IMG=${IMG:-var/image/evidenced.img}
STATE=${STATE:-var/qemu}
API_PORT=${API_PORT:-8080}
SMB_PORT=${SMB_PORT:-4450}
SERIAL=${SERIAL:-stdio}
[ -f "$IMG" ] || { echo "no $IMG: run make image" >&2; exit 1; }
rootfs/deps.sh
mkdir -p "$STATE/drives"
STATE=$(cd "$STATE" && pwd)
IMG=$(cd "$(dirname "$IMG")" && pwd)/$(basename "$IMG")
if [ "${FRESH:-1}" = 1 ] || [ ! -f "$STATE/disk.qcow2" ]; then
  rm -f "$STATE/disk.qcow2"
  qemu-img create -q -f qcow2 -b "$IMG" -F raw "$STATE/disk.qcow2"
fi
# Evidence drives: copies of the demo board's drive images (made by the daemon on first start).
demo=$STATE/demo/demo-drives
if [ ! -f "$demo/sata1-sandisk.img" ] || [ ! -f "$demo/sata2-samsung-fat32.img" ]; then
  make -s build >/dev/null
  bin/evidenced --data-dir "$STATE/demo" --board sim --listen 127.0.0.1:0 >"$STATE/demo.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do grep -q 'evidenced serving' "$STATE/demo.log" && break; sleep 0.1; done
  kill "$pid"; wait "$pid" 2>/dev/null || true
fi
for d in sata1:sata1-sandisk sata2:sata2-samsung-fat32 sas:sata2-samsung-fat32 usb:sata2-samsung-fat32 \
  nvme:sata1-sandisk hotusb:sata2-samsung-fat32 hotnvme:sata1-sandisk; do
  [ -f "$STATE/drives/${d%%:*}.img" ] || cp "$demo/${d#*:}.img" "$STATE/drives/${d%%:*}.img"
done
[ "${DRIVES_ONLY:-0}" = 1 ] && exit 0
if [ "${SMBD:-1}" = 1 ]; then
  s=$STATE/smb
  mkdir -p "$s"/{state,lock,cache,pid,private,ncalrpc,log} "$STATE/share"
  cat > "$s/smb.conf" <<CONF
[global]
workgroup = LAB
server role = standalone server
smb ports = $SMB_PORT
interfaces = 127.0.0.1
bind interfaces only = yes
state directory = $s/state
lock directory = $s/lock
cache directory = $s/cache
pid directory = $s/pid
private dir = $s/private
ncalrpc dir = $s/ncalrpc
log file = $s/log/log.%m
passdb backend = tdbsam:$s/private/passdb.tdb
server min protocol = SMB2
disable netbios = yes
load printers = no
disable spoolss = yes
map to guest = never

[images]
path = $STATE/share
read only = no
force user = root
CONF
  printf 'evidenced\nevidenced\n' | smbpasswd -c "$s/smb.conf" -a -s root >/dev/null
  smbd --foreground --no-process-group -s "$s/smb.conf" >"$s/smbd.out" 2>&1 &
  smbpid=$!
  trap 'kill $smbpid 2>/dev/null || true' EXIT
  echo "Samba: //10.0.2.2:$SMB_PORT/images from the guest (user root, password evidenced) = $STATE/share"
fi
accel=tcg
if [ -w /dev/kvm ] && grep -qE 'vmx|svm' /proc/cpuinfo; then accel=kvm; fi
serial=(-serial mon:stdio)
[ "$SERIAL" = stdio ] || serial=(-serial "file:$SERIAL")
rm -f "$STATE/qmp.sock" "$STATE/qga.sock"
drive() { echo "if=none,id=$1,file=$STATE/drives/$2.img,format=raw,cache=none,aio=threads${3:-}"; }
slow=",throttling.bps-read=${SLOW_BPS:-4000000}"
# Fixed PCI addresses: the board file names ports by their kernel attach points (udev ID_PATH).
# Without our own smbd, QEMU replaces this script (its caller can signal it directly).
run=()
[ "${SMBD:-1}" = 1 ] || run=(exec)
"${run[@]}" qemu-system-x86_64 -machine q35,accel=$accel -m 1024 -smp 1 -nodefaults -display none \
  -bios /usr/share/ovmf/OVMF.fd "${serial[@]}" \
  -drive if=none,id=sys,file="$STATE/disk.qcow2",format=qcow2 \
  -device virtio-blk-pci,drive=sys,addr=0x3,bootindex=0 \
  -netdev user,id=n0,hostfwd=tcp:127.0.0.1:$API_PORT-:80 -device virtio-net-pci,netdev=n0,addr=0x2 \
  -drive "$(drive ev-sata1 sata1)" -device ide-hd,bus=ide.0,drive=ev-sata1,model="SanDisk SDSSDA120G",serial=QSATA0001 \
  -drive "$(drive ev-sata2 sata2 "$slow")" -device ide-hd,bus=ide.1,drive=ev-sata2,model="Samsung SSD 840 PRO Series",serial=QSATA0002 \
  -device mptsas1068,id=sas,addr=0x5 \
  -drive "$(drive ev-sas sas)" -device scsi-hd,bus=sas.0,scsi-id=0,drive=ev-sas,vendor=SEAGATE,product=ST600MM0088,serial=QSAS0001,wwn=0x5000c500a1b2c3d4 \
  -device qemu-xhci,id=xhci,addr=0x6 \
  -drive "$(drive ev-usb usb)" -device usb-bot,bus=xhci.0,port=1,id=usbbot \
  -device scsi-hd,bus=usbbot.0,drive=ev-usb,vendor=WD,product=Elements-2620,serial=QUSB0001 \
  -device pcie-root-port,id=rp1,chassis=1,addr=0x7 \
  -drive "$(drive ev-nvme nvme)" -device nvme,bus=rp1,drive=ev-nvme,serial=QNVME0001 \
  -device pcie-root-port,id=rp2,chassis=2,addr=0x8 \
  -drive "$(drive hotusb hotusb "$slow")" -drive "$(drive hotnvme hotnvme)" \
  -device virtio-serial-pci,addr=0x9 \
  -chardev socket,path="$STATE/qga.sock",server=on,wait=off,id=qga0 \
  -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0 \
  -qmp unix:"$STATE/qmp.sock",server=on,wait=off \
  ${QEMU_EXTRA:-}
