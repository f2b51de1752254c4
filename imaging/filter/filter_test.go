package filter

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func i64(v int64) *int64 { return &v }

func at(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func TestMatch(t *testing.T) {
	jan := *at("2024-01-15T12:00:00Z")
	type tc struct {
		path string
		size int64
		mod  time.Time
		del  bool
		want bool
	}
	for _, g := range []struct {
		name  string
		f     Filter
		cases []tc
	}{
		{"empty filter selects all but deleted", Filter{Name: "all"}, []tc{
			{path: "p1/a", want: true},
			{path: "p1/a", del: true, want: false},
		}},
		{"include deleted", Filter{Name: "d", IncludeDeleted: true}, []tc{
			{path: "p1/a", del: true, want: true},
		}},
		{"extensions case-insensitive, with or without dot", Filter{Name: "e", Extensions: []string{"pl", ".PM", "tar.gz"}}, []tc{
			{path: "p1/usr/bin/x.pl", want: true},
			{path: "p1/usr/bin/X.PL", want: true},
			{path: "p1/lib/strict.pm", want: true},
			{path: "p1/a.tar.gz", want: true},
			{path: "p1/a.gz", want: false},
			{path: "p1/pl", want: false},          // no dot: not an extension
			{path: "p1/x.pl/readme", want: false}, // extension of a directory
			{path: "p1/x.plx", want: false},
		}},
		{"base-name pattern at any depth", Filter{Name: "b", Paths: []string{"*.log", "id_?sa"}}, []tc{
			{path: "p1/var/log/syslog.log", want: true},
			{path: "x.log", want: true},
			{path: "p1/home/a/.ssh/id_rsa", want: true},
			{path: "p1/home/a/.ssh/id_ecdsa", want: false},
			{path: "p1/log.d/x", want: false},
		}},
		{"** at start", Filter{Name: "s", Paths: []string{"**/.ssh/*"}}, []tc{
			{path: ".ssh/id_rsa", want: true}, // zero segments
			{path: "p1/home/ann/.ssh/id_rsa", want: true},
			{path: "p1/home/ann/.ssh/keys/id_rsa", want: false}, // * stays in its segment
		}},
		{"** in the middle", Filter{Name: "m", Paths: []string{"p1-ext4/**/perl/**/*.pm"}}, []tc{
			{path: "p1-ext4/usr/share/perl/5.36/strict.pm", want: true},
			{path: "p1-ext4/perl/strict.pm", want: true},
			{path: "p2-ntfs/usr/share/perl/5.36/strict.pm", want: false},
			{path: "p1-ext4/usr/share/perl5/strict.pm", want: false},
		}},
		{"** at end: below, not itself", Filter{Name: "e", Paths: []string{"p1/Users/*/AppData/**"}}, []tc{
			{path: "p1/Users/ann/AppData/Local/x.db", want: true},
			{path: "p1/Users/ann/AppData/x", want: true},
			{path: "p1/Users/ann/AppData", want: false},
			{path: "p1/Users/ann/Documents/x", want: false},
		}},
		{"trailing slash is everything below; leading slash anchors", Filter{Name: "t", Paths: []string{"**/cache/", "/p1/etc/passwd"}}, []tc{
			{path: "p1/home/a/cache/x/y", want: true},
			{path: "p1/home/a/cache", want: false},
			{path: "p1/etc/passwd", want: true},
			{path: "p2/p1/etc/passwd", want: false},
		}},
		{"full-path pattern is anchored and case-sensitive", Filter{Name: "f", Paths: []string{"usr/bin/*"}}, []tc{
			{path: "usr/bin/ls", want: true},
			{path: "p1-ext4/usr/bin/ls", want: false},
			{path: "USR/bin/ls", want: false},
		}},
		{"classes", Filter{Name: "c", Paths: []string{"p1/[a-c]?/[^x]*"}}, []tc{
			{path: "p1/b1/file", want: true},
			{path: "p1/d1/file", want: false},
			{path: "p1/b1/xfile", want: false},
		}},
		{"exclusion wins", Filter{Name: "x", Extensions: []string{"jpg"}, ExcludePaths: []string{"**/Cache/**", "thumb*"}}, []tc{
			{path: "p1/Pictures/a.jpg", want: true},
			{path: "p1/Browser/Cache/b.jpg", want: false},
			{path: "p1/Pictures/thumb1.jpg", want: false},
		}},
		{"sizes inclusive", Filter{Name: "z", MinSize: i64(10), MaxSize: i64(20)}, []tc{
			{path: "a", size: 9, want: false},
			{path: "a", size: 10, want: true},
			{path: "a", size: 20, want: true},
			{path: "a", size: 21, want: false},
		}},
		{"dates inclusive; unknown fails", Filter{Name: "d", ModifiedAfter: at("2024-01-01T00:00:00Z"), ModifiedBefore: at("2024-01-31T23:59:59Z")}, []tc{
			{path: "a", mod: *at("2024-01-01T00:00:00Z"), want: true},
			{path: "a", mod: *at("2023-12-31T23:59:59.999999999Z"), want: false},
			{path: "a", mod: *at("2024-01-31T23:59:59Z"), want: true},
			{path: "a", mod: *at("2024-01-31T23:59:59.000000001Z"), want: false},
			{path: "a", mod: *at("2024-01-01T01:00:00+01:00"), want: true}, // same instant as the bound
			{path: "a", mod: jan, want: true},
			{path: "a", want: false},
		}},
		{"AND between kinds, OR within a list", Filter{Name: "and", Extensions: []string{"doc", "pdf"}, Paths: []string{"**/Documents/**", "**/Desktop/**"}, MaxSize: i64(100)}, []tc{
			{path: "p1/Users/a/Desktop/x.pdf", size: 100, want: true},
			{path: "p1/Users/a/Documents/x.doc", size: 1, want: true},
			{path: "p1/Users/a/Documents/x.doc", size: 101, want: false},
			{path: "p1/Users/a/Downloads/x.doc", size: 1, want: false},
			{path: "p1/Users/a/Documents/x.txt", size: 1, want: false},
		}},
	} {
		t.Run(g.name, func(t *testing.T) {
			if err := g.f.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			for _, c := range g.cases {
				x := File{Path: c.path, Size: c.size, Modified: c.mod, Deleted: c.del}
				if got := g.f.Match(x); got != c.want {
					t.Errorf("Match(%+v) = %v, want %v", x, got, c.want)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		f    Filter
		want string // "" for valid
	}{
		{Filter{Name: "Perl modules_v2.0-final"}, ""},
		{Filter{Name: strings.Repeat("a", 64)}, ""},
		{Filter{Name: "a", MinSize: i64(5), MaxSize: i64(5)}, ""},
		{Filter{Name: "a", ModifiedAfter: at("2024-01-01T00:00:00Z"), ModifiedBefore: at("2024-01-01T00:00:00Z")}, ""},
		{Filter{}, "name: required"},
		{Filter{Name: strings.Repeat("a", 65)}, "name: 65 characters"},
		{Filter{Name: "a/b"}, `name: "a/b" has '/'`},
		{Filter{Name: "naïve"}, "name:"},
		{Filter{Name: "a", Extensions: []string{"pl", ""}}, "extensions[1]"},
		{Filter{Name: "a", Extensions: []string{"."}}, "extensions[0]"},
		{Filter{Name: "a", Extensions: []string{"a/b"}}, "extensions[0]"},
		{Filter{Name: "a", Paths: []string{"**/[abc"}}, `paths[0]: "**/[abc"`},
		{Filter{Name: "a", Paths: []string{"ok/*", ""}}, "paths[1]: \"\": empty pattern"},
		{Filter{Name: "a", ExcludePaths: []string{"a//b"}}, "excludePaths[0]"},
		{Filter{Name: "a", ExcludePaths: []string{"x\\"}}, "excludePaths[0]"},
		{Filter{Name: "a", MinSize: i64(-1)}, "minSize: -1 is negative"},
		{Filter{Name: "a", MaxSize: i64(-1)}, "maxSize: -1 is negative"},
		{Filter{Name: "a", MinSize: i64(6), MaxSize: i64(5)}, "minSize: 6 is greater than maxSize 5"},
		{Filter{Name: "a", ModifiedAfter: at("2024-01-02T00:00:00Z"), ModifiedBefore: at("2024-01-01T00:00:00Z")}, "modifiedAfter: 2024-01-02T00:00:00Z is later than modifiedBefore"},
	} {
		err := c.f.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Validate(%+v) = %v, want nil", c.f, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("Validate(%+v) = %v, want an error containing %q", c.f, err, c.want)
		}
	}
	// Every problem is reported at once.
	err := Filter{MinSize: i64(-1), Paths: []string{"["}}.Validate()
	for _, want := range []string{"name:", "minSize:", "paths[0]:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("combined error %v lacks %q", err, want)
		}
	}
}

func TestParse(t *testing.T) {
	f, err := Parse([]byte(`{"name":"Perl","extensions":["pl",".PM"],"paths":["**/perl/**"],"minSize":0,"maxSize":1048576,
		"modifiedAfter":"2024-01-01","modifiedBefore":"2024-01-31","includeDeleted":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if *f.ModifiedAfter != *at("2024-01-01T00:00:00Z") || !f.ModifiedBefore.Equal(*at("2024-01-31T23:59:59.999999999Z")) {
		t.Errorf("date bounds %v .. %v, want the whole days", f.ModifiedAfter, f.ModifiedBefore)
	}
	if !f.Match(File{Path: "p1/usr/share/perl/x.pm", Modified: *at("2024-01-31T23:59:59.5Z"), Deleted: true}) {
		t.Error("parsed filter misses a file on the last day")
	}
	// A saved preset reads back identically.
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Parse(data)
	if err != nil {
		t.Fatalf("re-parse %s: %v", data, err)
	}
	if again, _ := json.Marshal(g); string(again) != string(data) {
		t.Errorf("round trip changed the preset:\n%s\n%s", data, again)
	}

	f, err = Parse([]byte(`{"name":"t","modifiedAfter":"2024-01-01T10:00:00+02:00"}`))
	if err != nil || !f.ModifiedAfter.Equal(*at("2024-01-01T08:00:00Z")) {
		t.Errorf("RFC 3339 bound: %v, %v", f.ModifiedAfter, err)
	}

	for _, c := range []struct{ in, want string }{
		{`{"name":"a","extension":["pl"]}`, `unknown field "extension"`},
		{`{"name":"a","minSize":"10"}`, "minSize: want an integer, got a JSON string"},
		{`{"name":"a","maxSize":1.5}`, "maxSize"},
		{`{"name":"a","extensions":"pl"}`, "extensions: want an array of strings"},
		{`{"name":"a","includeDeleted":"yes"}`, "includeDeleted: want true or false"},
		{`{"name":"a","modifiedAfter":"2024-13-01"}`, `modifiedAfter: "2024-13-01" is neither`},
		{`{"name":"a","modifiedBefore":"2024-01-01 10:00"}`, "modifiedBefore:"},
		{`{"name":"a","modifiedBefore":20240101}`, "modifiedBefore: want a string"},
		{`{"name":"a"} {"name":"b"}`, "after the JSON object"},
		{`{"name":"a"`, "unexpected EOF"},
		{`[]`, "want a JSON object, got a JSON array"},
		{`{"name":"a","minSize":5,"maxSize":4}`, "minSize: 5 is greater than maxSize 4"},
		{`{"name":"bad/name"}`, "name:"},
	} {
		if _, err := Parse([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", c.in, err, c.want)
		}
	}
}

// Strictness holds when a preset is embedded in a larger settings document.
func TestEmbeddedStrict(t *testing.T) {
	var s struct{ Filters []Filter }
	err := json.Unmarshal([]byte(`{"Filters":[{"name":"a","bogus":1}]}`), &s)
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("embedded unknown field: %v", err)
	}
}
