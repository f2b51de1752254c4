package target

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A target folder whose path crosses a link that leads outside the roots is refused before any
// folder is created, whether the link is absolute or relative.
func TestOpenLocalRefusedPathCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	root, outside := filepath.Join(dir, "root"), filepath.Join(dir, "outside")
	for _, d := range []string{root, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(root, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside", filepath.Join(root, "rel")); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{"abs", "rel"} {
		l, err := OpenLocal(filepath.Join(root, link, "newdir", "sub"), []string{root})
		if err == nil {
			l.Close()
			t.Fatalf("%s: a folder through a link to outside the root was accepted", link)
		}
		if _, err := os.Lstat(filepath.Join(outside, "newdir")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: refused, but %s/newdir was created (%v)", link, outside, err)
		}
	}
	ents, err := os.ReadDir(outside)
	if err != nil || len(ents) != 0 {
		t.Fatalf("outside holds %v (%v)", ents, err)
	}
	// Inside the root, a new folder is made and used.
	l, err := OpenLocal(filepath.Join(root, "case", "sub"), []string{root})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if st, err := os.Stat(filepath.Join(root, "case", "sub")); err != nil || !st.IsDir() {
		t.Fatalf("target folder not created: %v", err)
	}
}

// A link planted inside an open target folder never leads a write outside it, and Mkdir counts a
// link as an existing name instead of following it.
func TestLocalNeverFollowsLinksOutside(t *testing.T) {
	dir := t.TempDir()
	root, outside := filepath.Join(dir, "root"), filepath.Join(dir, "outside")
	for _, d := range []string{root, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "Report.html"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLocal(root, []string{root})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Symlink(outside, filepath.Join(root, "Z_RAW_report")); err != nil {
		t.Fatal(err)
	}
	if err := l.Mkdir("Z_RAW_report"); !errors.Is(err, ErrExist) {
		t.Fatalf("Mkdir over a link: %v, want ErrExist", err)
	}
	if err := l.MkdirAll("Z_RAW_report/x"); err == nil {
		t.Fatal("MkdirAll through a link to outside succeeded")
	}
	if f, err := l.Create("Z_RAW_report/new.txt"); err == nil {
		f.Close()
		t.Fatal("Create through a link to outside succeeded")
	}
	if err := l.Remove("Z_RAW_report/Report.html"); err == nil {
		t.Fatal("Remove through a link to outside succeeded")
	}
	if b, err := os.ReadFile(filepath.Join(outside, "Report.html")); err != nil || string(b) != "keep" {
		t.Fatalf("outside file changed: %q %v", b, err)
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 {
		t.Fatalf("outside holds %d entries, want 1", len(ents))
	}
	if err := l.Mkdir("rep"); err != nil {
		t.Fatal(err)
	}
	if err := l.Mkdir("rep"); !errors.Is(err, ErrExist) {
		t.Fatalf("second Mkdir: %v, want ErrExist", err)
	}
}

func TestStripSecretOptions(t *testing.T) {
	cases := map[string]string{
		"username=u,password=SECRET":                    "username=u",
		"port=1445,pass=SECRET,domain=LAB":              "port=1445,domain=LAB",
		"cred=/root/SECRET.txt,vers=3.0":                "vers=3.0",
		"Credentials=/etc/SECRET, Password = SECRET,ro": "",
		"password=SEC,RET,port=2445":                    "port=2445",
		"domain=LAB,vers=3.1.1,nounix":                  "domain=LAB,vers=3.1.1,nounix",
	}
	for in, want := range cases {
		if got := StripSecretOptions(in); got != want {
			t.Errorf("StripSecretOptions(%q) = %q, want %q", in, got, want)
		}
	}
	o, err := BuildKernelOptions("10.0.0.1", Spec{Login: "u", MountOptions: "pass=SECRET,cred=/x/SECRET,port=1445"})
	if err != nil || strings.Contains(o.Data, "SECRET") || !strings.Contains(o.Data, "port=1445") {
		t.Fatalf("kernel options %q (%v)", o.Data, err)
	}
}
