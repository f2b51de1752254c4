package incompressible

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"testing"
)

func TestLikely(t *testing.T) {
	rnd := make([]byte, 32768)
	rand.Read(rnd)
	text := bytes.Repeat([]byte("From: someone@example.org\r\nSubject: the evidence report\r\n\r\n"), 600)[:32768]
	b64 := []byte(base64.StdEncoding.EncodeToString(rnd))[:32768]
	var gz bytes.Buffer
	z := gzip.NewWriter(&gz)
	for gz.Len() < 40000 {
		r := make([]byte, 1024)
		rand.Read(r)
		z.Write([]byte(base64.StdEncoding.EncodeToString(r)))
	}
	z.Close()
	// Random with one cluster of text, or with slack zeros at the end of one sector, must be tried.
	mixed := bytes.Clone(rnd)
	copy(mixed[8192:12288], text)
	slack := bytes.Clone(rnd)
	clear(slack[len(slack)-100:])
	for name, tc := range map[string]struct {
		p    []byte
		want bool
	}{
		"random": {rnd, true}, "gzip of base64": {gz.Bytes()[100:32868], true},
		"zeros": {make([]byte, 32768), false}, "text": {text, false}, "base64": {b64, false},
		"one text cluster": {mixed, false}, "slack": {slack, false}, "short random": {rnd[:4000], false},
	} {
		if got := Likely(tc.p); got != tc.want {
			t.Errorf("%s: Likely = %v, want %v", name, got, tc.want)
		}
	}
}

// FuzzLikely: any input, no panic.
func FuzzLikely(f *testing.F) {
	f.Add(make([]byte, 5000))
	f.Fuzz(func(t *testing.T, p []byte) { Likely(p) })
}
