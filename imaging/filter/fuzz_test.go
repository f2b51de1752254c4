package filter

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testenv"
)

// FuzzParse gives hostile preset JSON (from /api/settings) to Parse, and the presets it accepts to
// Match: errors, never a panic or a hang (globs with many ** included); an accepted preset survives
// its own JSON encoding unchanged, since the store keeps it that way.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"name":"Perl","extensions":["pl",".PM"],"paths":["**/perl/**"],"minSize":0,"maxSize":1048576,"includeDeleted":true}`,
		`{"name":"t","modifiedAfter":"2024-01-01T10:00:00+02:00","modifiedBefore":"2025-02-03"}`,
		`{"name":"x","excludePaths":["*.tmp","a/**/b/*/c"],"paths":["[a-c]?/**"]}`,
		`{"name":"","minSize":-1}`,
	} {
		f.Add(s)
	}
	files := []File{
		{Path: "usr/share/perl/5.36/strict.pm", Size: 1000, Modified: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)},
		{Path: "a/x/y/b/q/c", Size: 0, Deleted: true},
		{Path: "ab/" + string(make([]byte, 300)), Size: 1 << 40},
	}
	f.Fuzz(func(t *testing.T, in string) {
		defer testenv.NoHang(20 * time.Second)()
		flt, err := Parse([]byte(in))
		if err != nil {
			return
		}
		for _, x := range files {
			flt.Match(x)
		}
		b, err := json.Marshal(flt)
		if err != nil {
			t.Fatalf("marshal an accepted preset: %v", err)
		}
		again, err := Parse(b)
		if err != nil {
			t.Fatalf("an accepted preset does not parse after encoding: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(normal(flt), normal(again)) {
			t.Fatalf("preset changed through its JSON:\n%+v\n%+v", flt, again)
		}
	})
}

// normal compares times as instants (the JSON round trip may change their location) and an empty
// list as none.
func normal(f Filter) Filter {
	// omitempty drops an empty list: "excludePaths":[] comes back as no list, which selects the same.
	for _, l := range []*[]string{&f.Extensions, &f.Paths, &f.ExcludePaths} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	for _, p := range []**time.Time{&f.ModifiedAfter, &f.ModifiedBefore} {
		if *p != nil {
			u := (*p).UTC()
			*p = &u
		}
	}
	return f
}
