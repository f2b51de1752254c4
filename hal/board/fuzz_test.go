package board

import (
	"encoding/json"
	"testing"
)

// FuzzParse gives hostile board files to Parse: errors, never a panic; an accepted description
// validates again after its own JSON encoding.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"kind":"sim","applianceId":"A1","ports":[{"name":"sata3"},{"name":"usb2"},{"name":"Nvme1","mode":"TARGET"},{"name":"ext1"}]}`,
		`{"kind":"sim","applianceId":"E","ports":[{"name":"SAS2","drive":{"path":"/x.img","model":"Samsung SSD 840 PRO Series","serial":"S1AXNSAF106001H","firmware":"DXM05B0Q","sectorSize":4096,"badSectors":[7,3],"readMBps":12.5,"spinUpMs":300,"smart":{"passed":false,"temperature":51,"powerOnHours":12000,"reallocated":3,"pending":2,"supported":true}}}]}`,
		`{"kind":"sim","ports":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := Parse(in)
		if err != nil {
			return
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("marshal an accepted description: %v", err)
		}
		if _, err := Parse(b); err != nil {
			t.Fatalf("an accepted description does not parse after encoding: %v\n%s", err, b)
		}
	})
}
