package options

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/imaging/filter"
)

// Derived is the state a task's start adds to its options; records written before the options
// were typed kept it among the request's parameters.
type Derived struct {
	TargetBase string
	AcquiredAt time.Time
}

// FromLegacy reads the parameter map that task records kept before the options were typed
// (request parameters by their API names, already validated when the task started, plus
// targetBase, targetType, acquiredAt, hashes and filter). kind is the task's kind: image,
// logical or diagnose. It never fails: a value it cannot read keeps its default, as the old code
// did.
func FromLegacy(kind string, p map[string]string) (Task, Derived) {
	var d Derived
	d.TargetBase = p["targetBase"]
	d.AcquiredAt, _ = time.Parse(time.RFC3339Nano, p["acquiredAt"])
	target := func(prefix string) Target {
		return Target{Folder: p[prefix+"Folder"], Login: p[prefix+"FolderLogin"], Domain: p[prefix+"FolderDomain"],
			MountOptions: p["mountOptions"], DNSLookup: p["dnsLookup"]}
	}
	if kind == "diagnose" {
		t := Task{}
		if p["reportFolder"] != "" {
			r := target("report")
			t.Report = &r
		}
		return t, d
	}
	f := Format(p["targetType"])
	if f == "" {
		f = E01
		if kind == "logical" {
			f = L01
		}
	}
	t := Default(f)
	t.Target = target("target")
	t.TargetFile = p["targetFile"]
	t.Settings = p["settings"]
	t.SaveReport = p["saveReport"] != "false"
	t.Verify = p["verify"] != "false"
	if n, err := strconv.Atoi(p["retries"]); err == nil {
		t.Retries = n
	}
	if _, ok := p["hashes"]; ok {
		t.Hashes = nil
		for _, h := range strings.Split(p["hashes"], ",") {
			if n, err := digest.Parse(h); err == nil { // validated when the task started
				t.Hashes = append(t.Hashes, n)
			}
		}
	}
	pre := CasePrefix(f)
	t.Case = Case{Number: p[pre+"Case"], Evidence: p[pre+"Evid"], Description: p[pre+"Desc"], Examiner: p[pre+"Inv"], Notes: p[pre+"Notes"]}
	switch f {
	case E01:
		if v := p["e01Compression"]; v != "" {
			t.E01.Compression = strings.ToLower(v)
		} else if p["e01Comp"] == "false" {
			t.E01.Compression = "none"
		}
		t.E01.SegmentGB, _ = strconv.Atoi(p["e01Segment"])
	case AFF4:
		if v := p["aff4Comp"]; v != "" {
			t.AFF4.Compression = v
		}
	case L01:
		t.L01.Compress = p["compression"] != "false"
		t.L01.SegmentGB, _ = strconv.Atoi(p["l01Segment"])
	case Zip:
		t.Zip.Compress = p["compression"] != "false"
	}
	if s := p["filter"]; s != "" {
		var flt filter.Filter
		if json.Unmarshal([]byte(s), &flt) == nil {
			t.Filter = &flt
		}
	}
	return t, d
}
