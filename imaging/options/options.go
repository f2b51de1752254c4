// Package options holds the typed options of a task: the image format and its settings, the
// hashes, verification, retries and the case metadata of a physical or logical imaging task, and
// the report folder of a diagnose task. The HTTP API parses a request into them once (Parse), the
// task record stores them as JSON, and `evidenced acquire` builds them from its flags; tasks and
// format adapters read typed fields and never parse again.
package options

import (
	"slices"
	"strings"

	"github.com/evidenced/evidenced/imaging/filter"
)

// Format is an image format.
type Format string

// The formats this appliance writes.
const (
	E01  Format = "e01"
	AFF4 Format = "aff4"
	Raw  Format = "raw"
	L01  Format = "l01"
	Zip  Format = "zip"
)

// Physical and logical formats, in the order error messages list them.
var (
	PhysicalFormats = []Format{E01, AFF4, Raw}
	LogicalFormats  = []Format{L01, Zip}
)

// Extension is the file extension of a format, as in file and report folder names.
func (f Format) Extension() string {
	switch f {
	case E01:
		return "E01"
	case AFF4:
		return "aff4"
	case L01:
		return "L01"
	case Zip:
		return "zip"
	}
	return "raw"
}

// Logical reports whether f is a logical (file) container.
func (f Format) Logical() bool { return f == L01 || f == Zip }

// Target is a target or report folder as stored: never with its password.
type Target struct {
	Folder       string `json:"folder"`
	Login        string `json:"login,omitempty"`
	Domain       string `json:"domain,omitempty"`
	MountOptions string `json:"mountOptions,omitempty"`
	DNSLookup    string `json:"dnsLookup,omitempty"`
}

// Case is the case metadata written into the image (E01/L01 header, AFF4 properties).
type Case struct {
	Number      string `json:"number,omitempty"`
	Evidence    string `json:"evidence,omitempty"`
	Description string `json:"description,omitempty"`
	Examiner    string `json:"examiner,omitempty"`
	Notes       string `json:"notes,omitempty"`
}

// E01Options are the settings of an E01 image.
type E01Options struct {
	// Compression by its libewf name: none, empty-block, fast, best.
	Compression string `json:"compression"`
	SegmentGB   int    `json:"segmentGB,omitempty"` // 0: one file
}

// AFF4Options are the settings of an AFF4 image.
type AFF4Options struct {
	Compression string `json:"compression"` // lz4, snappy, deflate, none
}

// L01Options are the settings of an L01 container.
type L01Options struct {
	Compress  bool `json:"compress"`
	SegmentGB int  `json:"segmentGB,omitempty"`
}

// ZipOptions are the settings of a zip container.
type ZipOptions struct {
	Compress bool `json:"compress"`
}

// Task is everything a task needs besides the drive and the credentials.
type Task struct {
	Format     Format  `json:"format,omitempty"`
	Target     Target  `json:"target,omitzero"`
	TargetFile string  `json:"targetFile,omitempty"` // without extension; "" = default name
	Report     *Target `json:"reportFolder,omitempty"`
	// Settings is the saved preset the request named, if any (its values are already applied).
	Settings   string   `json:"settings,omitempty"`
	SaveReport bool     `json:"saveReport"`
	Verify     bool     `json:"verify"`
	Retries    int      `json:"retries"`
	Hashes     []string `json:"hashes,omitempty"` // upper case: MD5, SHA1, SHA256, SHA512
	Case       Case     `json:"case,omitzero"`

	E01  E01Options  `json:"e01,omitzero"`
	AFF4 AFF4Options `json:"aff4,omitzero"`
	L01  L01Options  `json:"l01,omitzero"`
	Zip  ZipOptions  `json:"zip,omitzero"`
	// Filter selects the files of a logical task (nil: all). Kept with the task, so a resume
	// selects the same files even if the preset was edited since.
	Filter *filter.Filter `json:"filter,omitempty"`
}

// DefaultRetries is how often an unreadable block is read again before it is zero-filled.
const DefaultRetries = 2

// Default returns the options of a task of format f with every default applied.
func Default(f Format) Task {
	t := Task{Format: f, SaveReport: true, Verify: true, Retries: DefaultRetries, Hashes: []string{"MD5", "SHA1"}}
	switch f {
	case E01:
		t.E01.Compression = "fast"
	case AFF4:
		t.AFF4.Compression = "lz4"
	case L01:
		t.L01.Compress = true
	case Zip:
		t.Zip.Compress = true
	}
	return t
}

// CasePrefix is the prefix of a format's case parameters: e01Case, aff4Case, l01Case. Raw images
// carry no metadata; their case fields use the e01 names (and go to the report only).
func CasePrefix(f Format) string {
	switch f {
	case AFF4:
		return "aff4"
	case L01, Zip:
		return "l01"
	}
	return "e01"
}

// HasHash reports whether the task computes the named hash.
func (t Task) HasHash(name string) bool { return slices.Contains(t.Hashes, strings.ToUpper(name)) }
