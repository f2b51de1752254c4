// Package report holds the report of a task as plain data (Report: case, source drive,
// acquisition, result, hashes, image files, audit and log lines; a diagnose's SMART table and
// surface map; a logical task's volumes and file list) and writes it in the forms that leave the
// lab with the evidence: Report.html (self-contained, printable on A4 and Letter), Report.pdf
// (drawn by a pure Go PDF library from the same model), Report.json (the same content, typed, for
// lab systems), Hashes.txt (md5sum -c / sha1sum -c format) and, for logical tasks, Files.csv.
//
// The tasks package fills a Report from a task record; nothing here reads the store or a drive,
// so every writer renders exactly the values the model holds.
package report

import (
	"time"
)

// Kinds of report, as the task kinds.
const (
	KindImage    = "image"
	KindLogical  = "logical"
	KindDiagnose = "diagnose"
)

// SchemaVersion is the version of Report.json's layout; it grows when a field changes meaning
// or goes away (new fields do not change it).
const SchemaVersion = 1

// Report is everything one task's report says.
type Report struct {
	Schema int    `json:"schema"` // SchemaVersion
	Kind   string `json:"kind"`   // image, logical, diagnose
	Title  string `json:"title"`
	// Generated is when this report was rendered; every time in the report is in TimeZone (an
	// IANA name, or "Local" when the system's zone has no name), and the writers show UTC beside.
	Generated time.Time `json:"generated"`
	TimeZone  string    `json:"timeZone"`
	Appliance Appliance `json:"appliance"`
	Task      Task      `json:"task"`
	Case      Case      `json:"case"`
	Source    Source    `json:"source"`
	// Acquisition is how the image was made (image and logical tasks).
	Acquisition *Acquisition `json:"acquisition,omitempty"`
	Result      Result       `json:"result"`
	Hashes      *Hashes      `json:"hashes,omitempty"`
	ImageFiles  []ImageFile  `json:"imageFiles,omitempty"`
	Diagnose    *Diagnose    `json:"diagnose,omitempty"`
	Logical     *Logical     `json:"logical,omitempty"`
	Audit       []string     `json:"audit"`
	Log         []string     `json:"log"`
	// LegacyHTML is the kind-specific section of a task recorded before reports were typed
	// (kept as it was rendered then; HTML only).
	LegacyHTML string `json:"legacyHtml,omitempty"`
}

// Appliance is the machine and software that made the report.
type Appliance struct {
	ID       string `json:"id"`
	Software string `json:"software"` // "evidenced 0.3"
}

// Task identifies the task.
type Task struct {
	Key   string `json:"key"`
	Owner string `json:"owner,omitempty"`
}

// Case is the case the evidence belongs to: the fields the request gave (written into the image
// too) and those of the case record it was started under.
type Case struct {
	Number       string `json:"number,omitempty"`
	Evidence     string `json:"evidence,omitempty"`
	Examiner     string `json:"examiner,omitempty"`
	Description  string `json:"description,omitempty"`
	Notes        string `json:"notes,omitempty"`
	Organisation string `json:"organisation,omitempty"`
	Location     string `json:"location,omitempty"`
}

// Source is the drive read.
type Source struct {
	Port       string `json:"port"`
	Bus        string `json:"bus,omitempty"`
	Model      string `json:"model"`
	Serial     string `json:"serial"`
	Firmware   string `json:"firmware,omitempty"`
	Size       int64  `json:"size"`       // bytes
	SectorSize int    `json:"sectorSize"` // logical sector, bytes; 0 = not recorded
	// HPA and DCO say what is known of hidden areas, in words ("none detected", "not checked").
	HPA string `json:"hpa"`
	DCO string `json:"dco"`
	// WriteBlock says how the drive was protected from writes while it was read.
	WriteBlock string `json:"writeBlock"`
	// SMART is the summary of the newest diagnose of this drive, when one ran.
	SMART *SMARTSummary `json:"smart,omitempty"`
}

// SMARTSummary is a diagnose's SMART result in brief.
type SMARTSummary struct {
	Task           string    `json:"task"` // the diagnose task's key
	At             time.Time `json:"at"`
	Supported      bool      `json:"supported"`
	Passed         bool      `json:"passed"`
	TemperatureC   int       `json:"temperatureC"`
	PowerOnHours   int       `json:"powerOnHours"`
	Reallocated    int       `json:"reallocatedSectors"`
	PendingSectors int       `json:"pendingSectors"`
}

// Acquisition is how the image was made.
type Acquisition struct {
	Format string `json:"format"` // e01, aff4, raw, l01, zip
	// Summary names the format and its options as a person would: "E01, deflate fast, segments
	// of 2 GiB".
	Summary  string    `json:"summary"`
	Settings []Setting `json:"settings"`
	Target   string    `json:"target"`
	Started  time.Time `json:"started"`
	// Ended is when the task ended (zero while paused); VerifyStarted when the re-read began.
	Ended         time.Time `json:"ended,omitzero"`
	VerifyStarted time.Time `json:"verifyStarted,omitzero"`
	// Seconds is Ended-Started less the time paused (PausedSeconds); ImagingSeconds the part
	// before the verification, less its pauses.
	Seconds        float64 `json:"seconds"`
	ImagingSeconds float64 `json:"imagingSeconds"`
	PausedSeconds  float64 `json:"pausedSeconds,omitempty"`
	// BytesPerSecond is the bytes read from the source over ImagingSeconds.
	BytesPerSecond float64 `json:"bytesPerSecond"`
}

// Setting is one labelled option: "Compression" → "deflate, fast".
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Result is how the task ended.
type Result struct {
	State   string `json:"state"` // completed, failed, stopped, paused
	Message string `json:"message"`
	Details string `json:"details,omitempty"`
	// Incomplete says how much of an image that did not complete was written ("" when whole).
	Incomplete string `json:"incomplete,omitempty"`
	BytesDone  int64  `json:"bytesDone"`
	BytesTotal int64  `json:"bytesTotal"`
	// Unreadable are the sector ranges that stayed unreadable (zero-filled in the image).
	Unreadable        []Range `json:"unreadable"`
	UnreadableSectors int64   `json:"unreadableSectors"`
	// Retries is how often a failing sector was read again before it was given up.
	Retries int `json:"retries"`
	// Recovery are the steps of a freezing-drive recovery (resets, power cycles), if any.
	Recovery []string `json:"recovery,omitempty"`
}

// Range is an unreadable sector range.
type Range struct {
	First int64 `json:"first"` // LBA
	Count int64 `json:"count"` // sectors
	Bytes int64 `json:"bytes"`
}

// Verdicts of a verification.
const (
	Match       = "MATCH"
	Mismatch    = "MISMATCH"
	NotVerified = "NOT VERIFIED"
)

// Hashes are the acquisition hashes and their verification.
type Hashes struct {
	// Covers says what data the hashes are computed over.
	Covers string    `json:"covers"`
	Rows   []HashRow `json:"rows"`
	// Verdict is MATCH, MISMATCH or NOT VERIFIED; Verification says what was re-read to verify.
	Verdict      string `json:"verdict"`
	Verification string `json:"verification"`
}

// HashRow is one algorithm's line.
type HashRow struct {
	Algorithm    string `json:"algorithm"` // MD5, SHA1, SHA256, SHA512
	Acquisition  string `json:"acquisition"`
	Verification string `json:"verification,omitempty"`
	Verdict      string `json:"verdict"`
}

// ImageFile is one file (segment) of the image as it is on the target.
type ImageFile struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// Hashes of the file's own bytes (raw and AFF4), by algorithm.
	Hashes map[string]string `json:"hashes,omitempty"`
}
