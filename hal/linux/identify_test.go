package linux

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// ataIdentifyBlob builds an IDENTIFY DEVICE block as a drive returns it: strings with the two
// characters of each word swapped, padded with spaces; LBA48 sector count; optional 4 KiB
// physical sectors; checksum.
func ataIdentifyBlob(model, serial, fw string, sectors uint64, physExp int, hpa bool) []byte {
	b := make([]byte, 512)
	put := func(off, n int, s string) {
		p := []byte(fmt.Sprintf("%-*s", n, s))
		for i := 0; i < n; i += 2 {
			b[off+i], b[off+i+1] = p[i+1], p[i]
		}
	}
	w := func(i int, v uint16) { binary.LittleEndian.PutUint16(b[2*i:], v) }
	w(0, 0x0040)
	put(20, 20, serial)
	put(46, 8, fw)
	put(54, 40, model)
	w(60, 0xffff)
	w(61, 0x0fff) // LBA28 saturates
	w(83, 1<<10)  // LBA48
	binary.LittleEndian.PutUint64(b[200:], sectors)
	if physExp > 0 {
		w(106, 0x4000|1<<13|uint16(physExp))
	}
	if hpa {
		w(82, 1<<10)
		w(85, 1<<10)
	}
	b[510] = 0xa5
	var sum byte
	for _, c := range b[:511] {
		sum += c
	}
	b[511] = -sum
	return b
}

func TestParseATAIdentify(t *testing.T) {
	b := ataIdentifyBlob("WDC WD10EZEX-08WN4A0", "WD-WCC6Y0ABCDEF", "01.01A01", 1953525168, 3, true)
	id, err := ParseATAIdentify(b)
	if err != nil {
		t.Fatal(err)
	}
	want := ATAIdentity{Model: "WDC WD10EZEX-08WN4A0", Serial: "WD-WCC6Y0ABCDEF", Firmware: "01.01A01", Sectors: 1953525168, Logical: 512, Physical: 4096, HPASupported: true, HPAEnabled: true}
	if id != want {
		t.Fatalf("got %+v\nwant %+v", id, want)
	}
	// QEMU's ide-hd as the guest sees it (model and serial from -device ide-hd,model=,serial=).
	q := ataIdentifyBlob("EVD TESTDISK SATA", "QM00001", "2.5+", 65536, 0, false)
	if id, err := ParseATAIdentify(q); err != nil || id.Model != "EVD TESTDISK SATA" || id.Serial != "QM00001" || id.Sectors != 65536 || id.Physical != 512 || id.HPASupported {
		t.Fatalf("QEMU blob: %+v %v", id, err)
	}
	b[100] ^= 1
	if _, err := ParseATAIdentify(b); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("bad checksum: %v", err)
	}
	if _, err := ParseATAIdentify(b[:100]); err == nil {
		t.Fatal("short block accepted")
	}
	atapi := ataIdentifyBlob("CD", "S", "F", 0, 0, false)
	atapi[510] = 0 // no checksum
	atapi[1] = 0x85
	if _, err := ParseATAIdentify(atapi); err == nil {
		t.Fatal("ATAPI device accepted")
	}
}

func TestParseInquiryAndVPD(t *testing.T) {
	inq := make([]byte, 36)
	copy(inq[8:], "SEAGATE ST300MM0048     N004")
	got, err := ParseInquiry(inq)
	if err != nil || got != (SCSIInquiry{DeviceType: 0, Vendor: "SEAGATE", Product: "ST300MM0048", Revision: "N004"}) {
		t.Fatalf("%+v %v", got, err)
	}
	inq[0] = 0x7f // peripheral qualifier 3: no device
	if _, err := ParseInquiry(inq); err == nil {
		t.Fatal("no-device LUN accepted")
	}
	if _, err := ParseInquiry(inq[:20]); err == nil {
		t.Fatal("short INQUIRY accepted")
	}
	if s, err := ParseVPD80([]byte(vpd80("  S0K2ABCD0000"))); err != nil || s != "S0K2ABCD0000" {
		t.Fatalf("VPD80 %q %v", s, err)
	}
	for _, bad := range [][]byte{{0, 0x83, 0, 1, 'x'}, {0, 0x80, 0, 9, 'x'}, {0, 0x80}, {0, 0x80, 0, 2, ' ', 0}} {
		if _, err := ParseVPD80(bad); err == nil {
			t.Errorf("VPD80 % x accepted", bad)
		}
	}
}

func TestParseReadCapacity16(t *testing.T) {
	b := make([]byte, 32)
	binary.BigEndian.PutUint64(b, 7814037167)
	binary.BigEndian.PutUint32(b[8:], 512)
	b[13] = 3
	n, l, p, err := ParseReadCapacity16(b)
	if err != nil || n != 7814037168 || l != 512 || p != 4096 {
		t.Fatalf("%d %d %d %v", n, l, p, err)
	}
	binary.BigEndian.PutUint32(b[8:], 520)
	if _, _, _, err := ParseReadCapacity16(b); err == nil {
		t.Fatal("block length 520 accepted")
	}
}

func nvmeCtrlBlob(serial, model, fw string) []byte {
	b := make([]byte, 4096)
	copy(b[4:24], fmt.Sprintf("%-20s", serial))
	copy(b[24:64], fmt.Sprintf("%-40s", model))
	copy(b[64:72], fmt.Sprintf("%-8s", fw))
	return b
}

func TestParseNVMe(t *testing.T) {
	c, err := ParseNVMeIdentifyController(nvmeCtrlBlob("EVDNVME0001", "QEMU NVMe Ctrl", "8.0.0"))
	if err != nil || c != (NVMeController{Serial: "EVDNVME0001", Model: "QEMU NVMe Ctrl", Firmware: "8.0.0"}) {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := ParseNVMeIdentifyController(make([]byte, 4096)); err == nil {
		t.Fatal("empty controller data accepted")
	}
	ns := make([]byte, 4096)
	binary.LittleEndian.PutUint64(ns, 2097152)
	ns[25] = 1    // two formats
	ns[26] = 1    // format 1 in use
	ns[128+2] = 9 // format 0: 512
	ns[132+2] = 12
	if n, bs, err := ParseNVMeIdentifyNamespace(ns); err != nil || n != 2097152 || bs != 4096 {
		t.Fatalf("%d %d %v", n, bs, err)
	}
	ns[26] = 2
	if _, _, err := ParseNVMeIdentifyNamespace(ns); err == nil {
		t.Fatal("format beyond the list accepted")
	}
}

func TestParseNativeMax(t *testing.T) {
	// Descriptor-format sense with an ATA Status Return descriptor: native max LBA 0x0074706daf
	// (a 250 GB drive) with EXTEND set.
	s := make([]byte, 8+14)
	s[0], s[7] = 0x72, 14
	d := s[8:]
	d[0], d[1], d[2] = 0x09, 0x0c, 1
	lba := uint64(0x0074706daf)
	d[7], d[9], d[11] = byte(lba), byte(lba>>8), byte(lba>>16)
	d[6], d[8], d[10] = byte(lba>>24), byte(lba>>32), byte(lba>>40)
	d[13] = 0x50
	got, err := ParseNativeMax(s)
	if err != nil || got != int64(lba) {
		t.Fatalf("%#x %v", got, err)
	}
	d[13] = 0x51
	if _, err := ParseNativeMax(s); err == nil {
		t.Fatal("aborted command accepted")
	}
	if _, err := ParseNativeMax([]byte{0x70, 0, 5, 0, 0, 0, 0, 10}); err == nil {
		t.Fatal("fixed-format sense accepted")
	}
}

func TestCDBs(t *testing.T) {
	id := IdentifyCDB()
	if id[0] != 0x85 || id[1] != 0x08 || id[2] != 0x0e || id[6] != 1 || id[14] != 0xec {
		t.Fatalf("IDENTIFY CDB % x", id)
	}
	nm := ReadNativeMaxCDB()
	if nm[0] != 0x85 || nm[1] != 0x07 || nm[2] != 0x20 || nm[14] != 0x27 || nm[13] != 0x40 {
		t.Fatalf("READ NATIVE MAX CDB % x", nm)
	}
}

// Drive answers are hostile input: no decoder may panic, whatever the bytes.
func FuzzDecoders(f *testing.F) {
	f.Add(ataIdentifyBlob("M", "S", "F", 100, 3, true))
	f.Add(nvmeCtrlBlob("S", "M", "F"))
	f.Add([]byte(vpd80("SER")))
	f.Add([]byte{0x72, 0, 0, 0, 0, 0, 0, 14, 9, 12, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50})
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseATAIdentify(b)
		ParseInquiry(b)
		ParseVPD80(b)
		ParseReadCapacity16(b)
		ParseNVMeIdentifyController(b)
		ParseNVMeIdentifyNamespace(b)
		ParseNativeMax(b)
		ParseSMARTStatus(b)
	})
}

// FuzzPathID: sysfs paths are the kernel's, but a broken tree must give errors, not panics.
func FuzzPathID(f *testing.F) {
	f.Add("devices/pci0000:00/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0/block/sda")
	f.Add("devices/pci0000:00/0000:00:14.0/usb2/2-2/2-2:1.0/host6/target6:0:0/6:0:0:0/block/sdc")
	f.Add("devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1")
	fs := newFakeSysF(f)
	f.Fuzz(func(t *testing.T, p string) {
		PathID(fs, p)
	})
}

func TestParseSMARTStatus(t *testing.T) {
	sense := func(mid, high, status byte) []byte {
		s := make([]byte, 8+14)
		s[0], s[7] = 0x72, 14
		d := s[8:]
		d[0], d[1] = 0x09, 0x0c
		d[9], d[11], d[13] = mid, high, status
		return s
	}
	if ok, err := ParseSMARTStatus(sense(0x4f, 0xc2, 0x50)); err != nil || !ok {
		t.Fatalf("passing drive: %v %v", ok, err)
	}
	if ok, err := ParseSMARTStatus(sense(0xf4, 0x2c, 0x50)); err != nil || ok {
		t.Fatalf("failing drive: %v %v", ok, err)
	}
	if _, err := ParseSMARTStatus(sense(0x4f, 0xc2, 0x51)); err == nil {
		t.Fatal("aborted command accepted")
	}
	if _, err := ParseSMARTStatus(sense(0x12, 0x34, 0x50)); err == nil {
		t.Fatal("unexpected registers accepted")
	}
	cdb := SMARTStatusCDB()
	if cdb[0] != 0x85 || cdb[4] != 0xda || cdb[10] != 0x4f || cdb[12] != 0xc2 || cdb[14] != 0xb0 {
		t.Fatalf("SMART RETURN STATUS CDB % x", cdb)
	}
}
