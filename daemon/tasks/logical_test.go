package tasks

import (
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/evidenced/evidenced/imaging/filter"
	"github.com/evidenced/evidenced/imaging/logical"
)

func entries() []logical.Entry {
	day := func(d int) time.Time { return time.Date(2024, 1, d, 12, 0, 0, 0, time.UTC) }
	return []logical.Entry{
		{Path: "etc", Dir: true, Mode: fs.ModeDir},
		{Path: "etc/passwd", Size: 900, Modified: day(1)},
		{Path: "etc/empty", Dir: true, Mode: fs.ModeDir},
		{Path: "usr", Dir: true, Mode: fs.ModeDir},
		{Path: "usr/lib", Dir: true, Mode: fs.ModeDir},
		{Path: "usr/lib/perl", Dir: true, Mode: fs.ModeDir},
		{Path: "usr/lib/perl/a.pl", Size: 100, Modified: day(10), ID: 1},
		{Path: "usr/lib/perl/a.pl", Size: 50, Modified: day(11), ID: 2, Deleted: true},
		{Path: "usr/lib/perl/big.pl", Size: 1 << 20, Modified: day(10)},
		{Path: "usr/lib/perl/old.pl", Size: 10, Modified: day(2)},
		{Path: "usr/lib/perl/link.pl", Size: 6, Modified: day(10), Mode: fs.ModeSymlink},
		{Path: "dev/null", Mode: fs.ModeDevice | fs.ModeCharDevice},
	}
}

func paths(es []logical.Entry) []string {
	var out []string
	for _, e := range es {
		s := e.Path
		if e.Deleted {
			s += " (deleted)"
		}
		out = append(out, s)
	}
	return out
}

// Without a filter every folder and every file with content is kept (deleted ones too); devices
// are left out. With one, only matching files and the folders leading to them, in walk order.
func TestSelectEntries(t *testing.T) {
	all := entries()
	got := paths(selectEntries(all, "p1-ext4", nil))
	want := []string{"etc", "etc/passwd", "etc/empty", "usr", "usr/lib", "usr/lib/perl", "usr/lib/perl/a.pl",
		"usr/lib/perl/a.pl (deleted)", "usr/lib/perl/big.pl", "usr/lib/perl/old.pl", "usr/lib/perl/link.pl"}
	if !slices.Equal(got, want) {
		t.Errorf("no filter:\n got %q\nwant %q", got, want)
	}
	maxSize := int64(64 << 10)
	after := time.Date(2024, 1, 5, 0, 0, 0, 0, time.UTC)
	f := &filter.Filter{Name: "perl", Extensions: []string{"pl"}, MaxSize: &maxSize, ModifiedAfter: &after}
	got = paths(selectEntries(all, "p1-ext4", f))
	want = []string{"usr", "usr/lib", "usr/lib/perl", "usr/lib/perl/a.pl", "usr/lib/perl/link.pl"}
	if !slices.Equal(got, want) {
		t.Errorf("perl filter:\n got %q\nwant %q", got, want)
	}
	f.IncludeDeleted = true
	got = paths(selectEntries(all, "p1-ext4", f))
	want = []string{"usr", "usr/lib", "usr/lib/perl", "usr/lib/perl/a.pl", "usr/lib/perl/a.pl (deleted)", "usr/lib/perl/link.pl"}
	if !slices.Equal(got, want) {
		t.Errorf("perl filter with deleted:\n got %q\nwant %q", got, want)
	}
	// Paths are matched with the volume folder in front.
	got = paths(selectEntries(all, "p1-ext4", &filter.Filter{Name: "etc", Paths: []string{"p1-ext4/etc/*"}}))
	if want = []string{"etc", "etc/passwd"}; !slices.Equal(got, want) {
		t.Errorf("path filter:\n got %q\nwant %q", got, want)
	}
}

// A deleted entry that shares its path with a live one (or another deleted one) gets its own name.
func TestRenameDeletedCollisions(t *testing.T) {
	items := []logicalItem{
		{e: logical.Entry{Path: "a.pl", ID: 7, Deleted: true}, path: "v/a.pl"},
		{e: logical.Entry{Path: "a.pl", ID: 1}, path: "v/a.pl"},
		{e: logical.Entry{Path: "b.pl", ID: 8, Deleted: true}, path: "v/b.pl"},
		{e: logical.Entry{Path: "b.pl", ID: 9, Deleted: true}, path: "v/b.pl"},
	}
	renameDeletedCollisions(items)
	var got []string
	for _, it := range items {
		got = append(got, it.path)
	}
	want := []string{"v/a.pl (deleted 7)", "v/a.pl", "v/b.pl", "v/b.pl (deleted 9)"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestVolumeName(t *testing.T) {
	for _, c := range []struct {
		v    logical.Volume
		want string
	}{
		{logical.Volume{Index: 1, FS: "ext4"}, "p1-ext4"},
		{logical.Volume{Index: 5, FS: "fat32"}, "p5-fat32"},
		{logical.Volume{Index: 0, FS: "ntfs"}, "fs-ntfs"},
		{logical.Volume{Index: 2}, "p2-unknown"},
	} {
		if got := volumeName(c.v); got != c.want {
			t.Errorf("%+v: %s, want %s", c.v, got, c.want)
		}
	}
}
