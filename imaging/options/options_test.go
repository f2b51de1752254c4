package options

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDefaultsAndExtensions(t *testing.T) {
	for _, c := range []struct {
		f   Format
		ext string
		ok  func(Task) bool
	}{
		{E01, "E01", func(o Task) bool { return o.E01.Compression == "fast" }},
		{AFF4, "aff4", func(o Task) bool { return o.AFF4.Compression == "lz4" }},
		{Raw, "raw", func(o Task) bool { return o.E01 == (E01Options{}) }},
		{L01, "L01", func(o Task) bool { return o.L01.Compress }},
		{Zip, "zip", func(o Task) bool { return o.Zip.Compress }},
	} {
		o := Default(c.f)
		if c.f.Extension() != c.ext || !o.Verify || !o.SaveReport || o.Retries != DefaultRetries || !o.HasHash("md5") || !o.HasHash("SHA1") || !c.ok(o) {
			t.Errorf("%s: extension %s, defaults %+v", c.f, c.f.Extension(), o)
		}
		if c.f.Logical() != (c.f == L01 || c.f == Zip) {
			t.Errorf("%s: Logical %v", c.f, c.f.Logical())
		}
	}
}

// The stored JSON reads back to the same options.
func TestJSONRoundTrip(t *testing.T) {
	o := Default(E01)
	o.Target = Target{Folder: "//srv/share", Login: "u", MountOptions: "vers=3.0"}
	o.Case = Case{Number: "C", Notes: "n"}
	o.E01.SegmentGB = 4
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var back Task
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, o) {
		t.Fatalf("round trip: %+v %v\n%s", back, err, b)
	}
}
