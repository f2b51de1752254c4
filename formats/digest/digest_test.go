package digest

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Name // "" = an error
	}{
		{"md5", MD5}, {"MD5", MD5}, {" Sha1 ", SHA1}, {"sha256", SHA256}, {"SHA512", SHA512},
		{"sha-1", ""}, {"crc32", ""}, {"", ""}, {"md5+sha1", ""},
	} {
		got, err := Parse(tc.in)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("Parse(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// New gives each name's algorithm: its sum of "abc" is the standard library's.
func TestNew(t *testing.T) {
	in := []byte("abc")
	m, s1, s256, s512 := md5.Sum(in), sha1.Sum(in), sha256.Sum256(in), sha512.Sum512(in)
	want := map[Name][]byte{MD5: m[:], SHA1: s1[:], SHA256: s256[:], SHA512: s512[:]}
	for _, n := range All() {
		h, err := New(n)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(in)
		if got := h.Sum(nil); hex.EncodeToString(got) != hex.EncodeToString(want[n]) {
			t.Errorf("%s: %x, want %x", n, got, want[n])
		}
	}
	if _, err := New("md5"); err == nil {
		t.Error(`New("md5") accepted a name not in its one spelling`)
	}
}

// A hash saved half way and restored gives the sum of the whole input.
func TestSaveRestore(t *testing.T) {
	data := make([]byte, 100_003)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, n := range All() {
		whole, _ := New(n)
		whole.Write(data)
		h, _ := New(n)
		h.Write(data[:54_321])
		st, err := SaveState(h)
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte("more that the restored hash must not see"))
		r, err := RestoreState(n, st)
		if err != nil {
			t.Fatal(err)
		}
		r.Write(data[54_321:])
		if hex.EncodeToString(r.Sum(nil)) != hex.EncodeToString(whole.Sum(nil)) {
			t.Errorf("%s: restored sum differs", n)
		}
		if _, err := RestoreState(n, st[:len(st)/2]); err == nil {
			t.Errorf("%s: a truncated state was restored", n)
		}
	}
	if _, err := RestoreState(SHA256, mustState(t, MD5)); err == nil {
		t.Error("an MD5 state restored as SHA256")
	}
}

func mustState(t *testing.T, n Name) []byte {
	h, _ := New(n)
	st, err := SaveState(h)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestOrderAndLower(t *testing.T) {
	if got := Order([]Name{SHA256, MD5, SHA256, SHA1}); !slices.Equal(got, []Name{MD5, SHA1, SHA256}) {
		t.Errorf("Order = %v", got)
	}
	if SHA512.Lower() != "sha512" {
		t.Errorf("Lower = %q", SHA512.Lower())
	}
}

// Compare sorts the hash map keys of a task as All lists them, any name it does not know last.
func TestCompare(t *testing.T) {
	got := []string{"SHA512", "X-OTHER", "SHA1", "MD5", "SHA256", "A-OTHER"}
	slices.SortFunc(got, Compare)
	if want := []string{"MD5", "SHA1", "SHA256", "SHA512", "A-OTHER", "X-OTHER"}; !slices.Equal(got, want) {
		t.Fatalf("sorted %v, want %v", got, want)
	}
}
