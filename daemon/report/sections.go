package report

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Diagnose is a diagnose task's findings.
type Diagnose struct {
	SMART   Health  `json:"smart"`
	Surface Surface `json:"surface"`
}

// Health is the drive's SMART view.
type Health struct {
	Supported      bool `json:"supported"`
	Passed         bool `json:"passed"`
	TemperatureC   int  `json:"temperatureC"`
	PowerOnHours   int  `json:"powerOnHours"`
	Reallocated    int  `json:"reallocatedSectors"`
	PendingSectors int  `json:"pendingSectors"`
	// Attributes is the ATA attribute table with each attribute's verdict.
	Attributes []Attribute `json:"attributes,omitempty"`
	// Other are values without thresholds (NVMe's health log), by name.
	Other []Setting `json:"other,omitempty"`
	// Error is why SMART could not be read, when it could not.
	Error string `json:"error,omitempty"`
}

// Attribute verdicts.
const (
	AttrOK         = "OK"
	AttrFailingNow = "FAILING NOW"
	AttrFailedPast = "FAILED IN THE PAST"
)

// Attribute is one SMART attribute.
type Attribute struct {
	ID        int    `json:"id"`
	Name      string `json:"name"`
	Value     int    `json:"value"`
	Worst     int    `json:"worst"`
	Threshold int    `json:"threshold"`
	Raw       string `json:"raw"`
	PreFail   bool   `json:"preFail"`
	Verdict   string `json:"verdict"`
}

// AttributeVerdict judges an attribute as smartctl does: failing when its normalized value is
// at or below its (non-zero) threshold, failed in the past when its worst value was.
func AttributeVerdict(value, worst, threshold int) string {
	switch {
	case threshold > 0 && value <= threshold:
		return AttrFailingNow
	case threshold > 0 && worst <= threshold:
		return AttrFailedPast
	}
	return AttrOK
}

// Surface is the surface read test.
type Surface struct {
	Bytes     int64   `json:"bytes"`
	Seconds   float64 `json:"seconds"`
	MBps      float64 `json:"mbps"`
	BlockSize int     `json:"blockSize"`
	// SlowestMs is the slowest single block read, in milliseconds.
	SlowestMs float64 `json:"slowestMs"`
	// Histogram counts the block reads by read time.
	Histogram []Bucket `json:"histogram"`
	// Unreadable are the sectors that stayed unreadable.
	Unreadable        []Range `json:"unreadable"`
	UnreadableSectors int64   `json:"unreadableSectors"`
	// Map is the drive in equal regions, in LBA order.
	Map []Region `json:"map"`
}

// Bucket is one class of the read-time histogram.
type Bucket struct {
	Label string `json:"label"` // "< 5ms"
	Reads int    `json:"reads"`
}

// Region is one cell of the surface map.
type Region struct {
	Offset     int64   `json:"offset"`
	Bytes      int64   `json:"bytes"`
	MeanMs     float64 `json:"meanMs"`
	MaxMs      float64 `json:"maxMs"`
	Unreadable int64   `json:"unreadable"` // sectors
}

// Logical is a logical task's volumes and files.
type Logical struct {
	Volumes  []Volume `json:"volumes"`
	Problems []string `json:"problems"`
	Files    []File   `json:"files"`
}

// Volume is one partition or file system and what was taken from it.
type Volume struct {
	Name     string `json:"name"` // folder in the container: p1-ext4
	Scheme   string `json:"scheme,omitempty"`
	PartType string `json:"partType,omitempty"`
	FS       string `json:"fileSystem"`
	Label    string `json:"label,omitempty"`
	Offset   int64  `json:"offset"`
	Size     int64  `json:"size"`
	State    string `json:"state"`
	// Summary of the files copied from the volume.
	Files   int   `json:"files"`
	Folders int   `json:"folders"`
	Bytes   int64 `json:"bytes"`
	Deleted int   `json:"deleted"`
	Errors  int   `json:"errors"`
}

// File is one entry of the file list.
type File struct {
	Path     string    `json:"path"`
	Dir      bool      `json:"dir,omitempty"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified,omitzero"`
	Deleted  bool      `json:"deleted,omitempty"`
	MD5      string    `json:"md5,omitempty"`
	SHA1     string    `json:"sha1,omitempty"`
	Err      string    `json:"error,omitempty"`
}

// Summarize counts each volume's files, folders, bytes, deleted entries and errors from the
// file list (a file belongs to the volume whose name is its first path element).
func (l *Logical) Summarize() {
	idx := map[string]int{}
	for i := range l.Volumes {
		v := &l.Volumes[i]
		v.Files, v.Folders, v.Bytes, v.Deleted, v.Errors = 0, 0, 0, 0, 0
		idx[v.Name] = i
	}
	for _, f := range l.Files {
		name, _, _ := strings.Cut(f.Path, "/")
		i, ok := idx[name]
		if !ok {
			continue
		}
		v := &l.Volumes[i]
		if f.Dir {
			v.Folders++
		} else {
			v.Files++
			v.Bytes += f.Size
		}
		if f.Deleted {
			v.Deleted++
		}
		if f.Err != "" {
			v.Errors++
		}
	}
}

// Extra is the kind-specific part of a report that a task keeps with its record (the store
// holds it as JSON beside the task): a report rendered later, from /api/report, has it all.
type Extra struct {
	Diagnose *Diagnose `json:"diagnose,omitempty"`
	Logical  *Logical  `json:"logical,omitempty"`
}

// Marshal encodes e for the task record.
func (e Extra) Marshal() (string, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("encode report section: %w", err)
	}
	return string(b), nil
}

// ParseExtra decodes what a task record keeps. A record from before typed reports kept an HTML
// section: it comes back as legacy HTML, to be shown as it was.
func ParseExtra(s string) (Extra, string, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return Extra{}, "", nil
	}
	if !strings.HasPrefix(t, "{") {
		return Extra{}, s, nil
	}
	var e Extra
	if err := json.Unmarshal([]byte(t), &e); err != nil {
		return Extra{}, "", fmt.Errorf("report section of the task record: %w", err)
	}
	return e, "", nil
}
