package tasks

import (
	"strings"
	"testing"

	"github.com/evidenced/evidenced/daemon/report"
	"github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/store"
)

// The Hashes section's verdict follows what the verification found: MATCH when every re-read
// hash equals the acquisition's, MISMATCH (overall and on the row) when one differs, NOT VERIFIED
// with the reason when nothing was re-read.
func TestReportHashesVerdict(t *testing.T) {
	acq := map[string]string{"MD5": "aa", "SHA1": "bb"}
	for _, c := range []struct {
		name     string
		verify   bool
		state    string
		verified bool
		re       map[string]string
		verdict  string
		rows     []string
		says     string
	}{
		{"match", true, StateCompleted, true, map[string]string{"MD5": "aa", "SHA1": "bb"}, report.Match, []string{report.Match, report.Match}, "every hash equals"},
		{"mismatch", true, StateFailed, false, map[string]string{"MD5": "aa", "SHA1": "cc"}, report.Mismatch, []string{report.Match, report.Mismatch}, "DIFFER"},
		{"off", false, StateCompleted, false, nil, report.NotVerified, []string{report.NotVerified, report.NotVerified}, "turned off"},
		{"stopped", true, StateStopped, false, nil, report.NotVerified, []string{report.NotVerified, report.NotVerified}, "ended (stopped) before"},
	} {
		tk := &store.Task{Kind: KindImage, State: c.state, Hashes: acq, VerifyHashes: c.re, Verified: c.verified,
			Options: options.Task{Format: options.E01, Verify: c.verify}}
		h := reportHashes(tk)
		if h.Verdict != c.verdict || len(h.Rows) != 2 || h.Rows[0].Algorithm != "MD5" || h.Rows[0].Verdict != c.rows[0] || h.Rows[1].Verdict != c.rows[1] ||
			!strings.Contains(h.Verification, c.says) {
			t.Errorf("%s: %+v", c.name, h)
		}
	}
	if reportHashes(&store.Task{Kind: KindImage}) != nil {
		t.Error("a task without hashes has a Hashes section")
	}
}

func TestHPAText(t *testing.T) {
	if s := hpaText(&store.Task{Bus: "sata", Size: 1000, NativeSize: 1512}); !strings.Contains(s, "present") || !strings.Contains(s, "512 bytes") {
		t.Errorf("HPA: %q", s)
	}
	if s := hpaText(&store.Task{Bus: "sata", Size: 1000}); !strings.HasPrefix(s, "none detected") {
		t.Errorf("no HPA: %q", s)
	}
}
