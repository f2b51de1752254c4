package board

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/hal"
)

const minimal = `{"kind": "sim", "applianceId": "EVD0001", "ports": [{"name": "SATA1", "mode": "source", "drive": {"path": "/abs/disk.img", "model": "SanDisk SDSSDA120G", "serial": "171108456213"}}, {"name": "USB1", "mode": "target"}]}`

func TestParseMinimal(t *testing.T) {
	d, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != "sim" || d.ApplianceID != "EVD0001" || len(d.Ports) != 2 {
		t.Fatalf("got %+v", d)
	}
	dr := d.Ports[0].Drive
	if dr == nil || dr.Path != "/abs/disk.img" || dr.Model != "SanDisk SDSSDA120G" || dr.Serial != "171108456213" || dr.SectorSize != 512 {
		t.Fatalf("drive %+v", dr)
	}
	if d.Ports[1].Drive != nil || d.Ports[1].Mode != "target" {
		t.Fatalf("port 2 %+v", d.Ports[1])
	}
}

func TestParseNormalizes(t *testing.T) {
	d, err := Parse([]byte(`{"kind":"sim","applianceId":"A1","ports":[{"name":"sata3"},{"name":"usb2"},{"name":"Nvme1","mode":"TARGET"},{"name":"ext1"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []PortDesc{{Name: "SATA3", Mode: "source"}, {Name: "USB2", Mode: "target"}, {Name: "NVME1", Mode: "target"}, {Name: "EXT1", Mode: "source"}}
	for i, w := range want {
		if d.Ports[i].Name != w.Name || d.Ports[i].Mode != w.Mode {
			t.Errorf("port %d = %+v, want %+v", i, d.Ports[i], w)
		}
	}
}

func TestParseErrors(t *testing.T) {
	drive := func(extra string) string {
		return `{"kind":"sim","applianceId":"EVD1","ports":[{"name":"SATA1","drive":{` + extra + `}}]}`
	}
	ok := `"path":"/a.img","model":"M X","serial":"S1"`
	cases := []struct {
		name, in, want string
	}{
		{"not json", `{`, "unexpected EOF"},
		{"trailing", `{"kind":"sim","applianceId":"E","ports":[{"name":"SATA1"}]} {}`, "trailing data"},
		{"unknown field", `{"kind":"sim","applianceId":"E","ports":[{"name":"SATA1","mdoe":"source"}]}`, `unknown field "mdoe"`},
		{"unknown drive field", drive(ok + `,"badSector":[1]`), `unknown field "badSector"`},
		{"missing kind", `{"applianceId":"E","ports":[{"name":"SATA1"}]}`, "kind: missing"},
		{"bad kind", `{"kind":"qemu","applianceId":"E","ports":[{"name":"SATA1"}]}`, `kind: unknown "qemu"`},
		{"missing appliance", `{"kind":"sim","ports":[{"name":"SATA1"}]}`, "applianceId: missing"},
		{"appliance with space", `{"kind":"sim","applianceId":"EVD 1","ports":[{"name":"SATA1"}]}`, "applianceId"},
		{"appliance with underscore", `{"kind":"sim","applianceId":"EVD_1","ports":[{"name":"SATA1"}]}`, "applianceId"},
		{"no ports", `{"kind":"sim","applianceId":"E","ports":[]}`, "ports: the board has no ports"},
		{"unknown port", `{"kind":"sim","applianceId":"E","ports":[{"name":"SATA9"}]}`, `ports[0].name: unknown port "SATA9"`},
		{"empty port name", `{"kind":"sim","applianceId":"E","ports":[{"name":""}]}`, `ports[0].name: unknown port ""`},
		{"duplicate port", `{"kind":"sim","applianceId":"E","ports":[{"name":"SATA1"},{"name":"sata1"}]}`, "ports[1].name: duplicate port SATA1"},
		{"bad mode", `{"kind":"sim","applianceId":"E","ports":[{"name":"SATA1","mode":"both"}]}`, `ports[0].mode (SATA1): unknown port mode "both"`},
		{"drive on linux", `{"kind":"linux","applianceId":"E","ports":[{"name":"SATA1","attach":"pci-0000:00:1f.2-ata-1","drive":{` + ok + `}}]}`, "ports[0].drive (SATA1): drives can only"},
		{"missing path", drive(`"model":"M","serial":"S"`), "ports[0].drive (SATA1): path: missing"},
		{"relative path", drive(`"path":"disk.img","model":"M","serial":"S"`), `path: "disk.img" is not absolute`},
		{"missing model", drive(`"path":"/a","serial":"S"`), "model: missing"},
		{"missing serial", drive(`"path":"/a","model":"M"`), "serial: missing"},
		{"serial with space", drive(`"path":"/a","model":"M","serial":"S 1"`), `serial: "S 1" must be one word`},
		{"serial with tab", drive(`"path":"/a","model":"M","serial":"S\t1"`), "serial:"},
		{"serial with underscore", drive(`"path":"/a","model":"M","serial":"S_1"`), "serial:"},
		{"serial with plus", drive(`"path":"/a","model":"M","serial":"S+1"`), "serial:"},
		{"model trailing space", drive(`"path":"/a","model":"M ","serial":"S"`), "model:"},
		{"model leading space", drive(`"path":"/a","model":" M","serial":"S"`), "model:"},
		{"model double space", drive(`"path":"/a","model":"M  X","serial":"S"`), "model:"},
		{"model newline", drive(`"path":"/a","model":"M\nX","serial":"S"`), "non-printable"},
		{"model underscore", drive(`"path":"/a","model":"WDC_WD10","serial":"S"`), "model:"},
		{"model percent", drive(`"path":"/a","model":"M%20X","serial":"S"`), "model:"},
		{"sector size", drive(ok + `,"sectorSize":520`), "sectorSize: 520"},
		{"negative bad sector", drive(ok + `,"badSectors":[5,-1]`), "badSectors[1]: negative"},
		{"negative rate", drive(ok + `,"readMBps":-1`), "readMBps: negative"},
		{"negative spin-up", drive(ok + `,"spinUpMs":-1`), "spinUpMs: negative"},
		{"negative smart", drive(ok + `,"smart":{"pending":-2}`), "smart.pending: negative"},
		{"unknown smart field", drive(ok + `,"smart":{"temp":40}`), `unknown field "temp"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.in))
			if err == nil {
				t.Fatalf("Parse accepted %s", c.in)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestParseFullDrive(t *testing.T) {
	d, err := Parse([]byte(`{"kind":"sim","applianceId":"E","ports":[{"name":"SAS2","drive":{"path":"/x.img","model":"Samsung SSD 840 PRO Series","serial":"S1AXNSAF106001H","firmware":"DXM05B0Q","sectorSize":4096,"badSectors":[7,3],"readMBps":12.5,"spinUpMs":300,"smart":{"passed":false,"temperature":51,"powerOnHours":12000,"reallocated":3,"pending":2,"supported":true}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	dr := d.Ports[0].Drive
	if dr.SectorSize != 4096 || dr.ReadMBps != 12.5 || dr.SpinUpMs != 300 || len(dr.BadSectors) != 2 || dr.Firmware != "DXM05B0Q" {
		t.Fatalf("%+v", dr)
	}
	if s := dr.SMART; s == nil || *s.Passed || *s.Temperature != 51 || *s.PowerOnHours != 12000 || *s.Reallocated != 3 || *s.Pending != 2 || !*s.Supported {
		t.Fatalf("smart %+v", dr.SMART)
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "board.json")
	if err := os.WriteFile(p, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(`{"kind":"sim"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("error should name the file: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestPortNames(t *testing.T) {
	tf, tf2 := TaskForcePorts(), TaskForce2Ports()
	if len(tf) != 18 || len(tf2) != 26 {
		t.Fatalf("%d %d", len(tf), len(tf2))
	}
	in2 := map[string]bool{}
	for _, p := range tf2 {
		if in2[p] {
			t.Fatalf("duplicate %s", p)
		}
		in2[p] = true
	}
	for _, p := range tf {
		if !in2[p] {
			t.Fatalf("%s missing from TaskForce 2", p)
		}
	}
	tf[0] = "XXX" // callers get a copy
	if TaskForcePorts()[0] != "SATA1" {
		t.Fatal("TaskForcePorts shares its slice")
	}
	for in, want := range map[string]string{"sata1": "SATA1", "Nvme4": "NVME4", "EXT1": "EXT1", " usb4 ": "USB4"} {
		if got, ok := CanonicalPort(in); !ok || got != want {
			t.Errorf("CanonicalPort(%q) = %q %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "SATA", "SATA0", "SATA9", "USB5", "NVME5", "IDE2", "SATA 1"} {
		if _, ok := CanonicalPort(bad); ok {
			t.Errorf("CanonicalPort(%q) accepted", bad)
		}
	}
	for in, want := range map[string]string{"SATA8": "sata", "sas3": "sas", "USB1": "usb", "IDE1": "ide", "EXT1": "ext", "NVME2": "nvme", "FOO1": ""} {
		if got := BusOf(in); got != want {
			t.Errorf("BusOf(%q) = %q, want %q", in, got, want)
		}
	}
	if DefaultMode("USB3") != hal.ModeTarget || DefaultMode("SAS1") != hal.ModeSource || DefaultMode("NVME1") != hal.ModeSource {
		t.Error("default modes")
	}
}

const linuxBoard = `{"kind":"linux","applianceId":"EVD9","ports":[
 {"name":"SATA1","attach":"pci-0000:00:1f.2-ata-1","power":{"chip":"board-pwr","line":3,"activeLow":true},"reset":{"chip":"board-pwr","line":4}},
 {"name":"sas1","bus":"SAS","attach":"pci-0000:02:00.0-sas-phy0-lun-0"},
 {"name":"USB1","attach":"pci-0000:00:14.0-usb-0:2:1.0-scsi-0:0:0:0"},
 {"name":"NVME1","mode":"target","attach":"pci-0000:03:00.0-nvme-1"},
 {"name":"SATA2","attach":"loop-7"}]}`

func TestParseLinux(t *testing.T) {
	d, err := Parse([]byte(linuxBoard))
	if err != nil {
		t.Fatal(err)
	}
	p := d.Ports[0]
	if p.Bus != "sata" || p.Attach != "pci-0000:00:1f.2-ata-1" || p.Mode != "source" {
		t.Fatalf("SATA1 %+v", p)
	}
	if p.Power == nil || *p.Power != (GPIOLine{Chip: "board-pwr", Line: 3, ActiveLow: true}) {
		t.Fatalf("SATA1 power %+v", p.Power)
	}
	if p.Reset == nil || *p.Reset != (GPIOLine{Chip: "board-pwr", Line: 4}) {
		t.Fatalf("SATA1 reset %+v", p.Reset)
	}
	if d.Ports[1].Name != "SAS1" || d.Ports[1].Bus != "sas" || d.Ports[1].Power != nil {
		t.Fatalf("SAS1 %+v", d.Ports[1])
	}
	if d.Ports[2].Bus != "usb" || d.Ports[2].Mode != "target" || d.Ports[3].Mode != "target" || d.Ports[3].Bus != "nvme" {
		t.Fatalf("USB1/NVME1 %+v %+v", d.Ports[2], d.Ports[3])
	}
}

func TestParseLinuxErrors(t *testing.T) {
	port := func(p string) string { return `{"kind":"linux","applianceId":"E","ports":[` + p + `]}` }
	cases := []struct{ name, in, want string }{
		{"no attach", port(`{"name":"SATA1"}`), "ports[0] (SATA1): attach: missing"},
		{"bad attach char", port(`{"name":"SATA1","attach":"pci 0000"}`), "ports[0] (SATA1): attach:"},
		{"attach empty component", port(`{"name":"SATA1","attach":"pci--ata-1"}`), "empty component"},
		{"duplicate attach", port(`{"name":"SATA1","attach":"pci-0000:00:1f.2-ata-1"},{"name":"SATA2","attach":"pci-0000:00:1f.2-ata-1"}`), "ports[1] (SATA2): attach: \"pci-0000:00:1f.2-ata-1\" overlaps port SATA1"},
		{"nested attach", port(`{"name":"USB1","attach":"pci-0000:00:14.0-usb-0:2"},{"name":"USB2","attach":"pci-0000:00:14.0-usb-0:2-scsi-0:0:0:0"}`), "ports[1] (USB2): attach"},
		{"bad bus", port(`{"name":"SATA1","bus":"scsi","attach":"a-1"}`), `ports[0] (SATA1): bus: unknown "scsi"`},
		{"power no chip", port(`{"name":"SATA1","attach":"a-1","power":{"line":1}}`), "ports[0] (SATA1): power.chip: missing"},
		{"power bad line", port(`{"name":"SATA1","attach":"a-1","power":{"chip":"c","line":-1}}`), "power.line: -1"},
		{"reset = power", port(`{"name":"SATA1","attach":"a-1","power":{"chip":"c","line":1},"reset":{"chip":"c","line":1}}`), "reset: the same GPIO line"},
		{"unknown gpio field", port(`{"name":"SATA1","attach":"a-1","power":{"chip":"c","offset":1}}`), `unknown field "offset"`},
		{"attach on sim", `{"kind":"sim","applianceId":"E","ports":[{"name":"SATA1","attach":"a-1"}]}`, "ports[0] (SATA1): attach, power and reset describe real ports"},
		{"power on sim", `{"kind":"sim","applianceId":"E","ports":[{"name":"SATA1","power":{"chip":"c","line":1}}]}`, "only on a \"linux\" board"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestParseIdlePowerOff(t *testing.T) {
	const tmpl = `{"kind":"sim","applianceId":"E1",%s"ports":[{"name":"SATA1"}]}`
	for _, c := range []struct {
		field string
		want  time.Duration
		err   string
	}{
		{``, 0, ""},
		{`"idlePowerOff":"10m",`, 10 * time.Minute, ""},
		{`"idlePowerOff":"1h30m",`, 90 * time.Minute, ""},
		{`"idlePowerOff":"0",`, 0, ""},
		{`"idlePowerOff":600,`, 0, `not 600`},
		{`"idlePowerOff":"10 minutes",`, 0, `duration "10 minutes"`},
		{`"idlePowerOff":"-1m",`, 0, "idlePowerOff: -1m0s out of range"},
		{`"idlePowerOff":"48h",`, 0, "idlePowerOff: 48h0m0s out of range"},
	} {
		d, err := Parse([]byte(fmt.Sprintf(tmpl, c.field)))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.field, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.field, err)
			continue
		}
		if time.Duration(d.IdlePowerOff) != c.want {
			t.Errorf("%s: %v, want %v", c.field, time.Duration(d.IdlePowerOff), c.want)
		}
		// Written back (board discover prints descriptions) it reads the same.
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := Parse(b); err != nil || again.IdlePowerOff != d.IdlePowerOff {
			t.Errorf("%s: round trip %s: %v %v", c.field, b, again.IdlePowerOff, err)
		}
		if c.want == 0 && strings.Contains(string(b), "idlePowerOff") {
			t.Errorf("%s: a zero duration is written: %s", c.field, b)
		}
	}
}
