package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The steps of acquire the other acquire tests do not reach: a missing --out is the usage error
// and creates no image; --cpuprofile writes a profile; the summary lists the image's files (absolute,
// existing, raw: NAME.raw) and MD5 and SHA-256 as asked; --verify=false leaves "verified" out.
func TestAcquireSteps(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 13)
	}
	if err := os.WriteFile(src, data, 0o444); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(builtBinary, "acquire", "--source", src, "--format", "raw").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "usage: evidenced acquire") {
		t.Fatalf("acquire without --out: %v\n%s", err, out)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.raw")); len(m) != 0 {
		t.Fatalf("acquire without --out left %v", m)
	}
	for _, verify := range []bool{true, false} {
		name := "img-" + map[bool]string{true: "verified", false: "unverified"}[verify]
		prof := filepath.Join(dir, name+".pprof")
		cmd := exec.Command(builtBinary, "acquire", "--source", src, "--format", "raw", "--hash", "md5,sha256",
			"--out", filepath.Join(dir, name), "--cpuprofile", prof, "--verify="+map[bool]string{true: "true", false: "false"}[verify])
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, stderr.String())
		}
		var sum acquireSummary
		if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
			t.Fatalf("%s: summary: %v\n%s", name, err, stdout.String())
		}
		want := filepath.Join(dir, name+".raw")
		if !slices.Equal(sum.Files, []string{want}) {
			t.Fatalf("%s: files %v, want [%s]", name, sum.Files, want)
		}
		img, err := os.ReadFile(want)
		if err != nil || !bytes.Equal(img, data) {
			t.Fatalf("%s: the raw image differs from the source (%v)", name, err)
		}
		if sum.Bytes != int64(len(data)) || sum.Hashes["MD5"] != md5hex(data) || len(sum.Hashes) != 2 || sum.Hashes["SHA256"] == "" {
			t.Fatalf("%s: bytes %d hashes %v", name, sum.Bytes, sum.Hashes)
		}
		if verify != (sum.Verified != nil) || (sum.Verified != nil && !*sum.Verified) {
			t.Fatalf("%s: verified %v", name, sum.Verified)
		}
		if fi, err := os.Stat(prof); err != nil || fi.Size() == 0 {
			t.Fatalf("%s: no CPU profile written (%v)", name, err)
		}
	}
}
