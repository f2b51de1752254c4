package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/evidenced/evidenced/imaging/options"
)

// Bytes writes a size as an examiner reads it: exact bytes with thousands separators, then
// decimal and binary units ("256,000,000 bytes (256.0 MB, 244.1 MiB)").
func Bytes(n int64) string {
	s := group(n) + " bytes"
	if n < 1000 {
		return s
	}
	return s + " (" + decimal(n) + ", " + binary(n) + ")"
}

func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func decimal(n int64) string { return scaled(n, 1000, "kB", "MB", "GB", "TB", "PB") }
func binary(n int64) string  { return scaled(n, 1024, "KiB", "MiB", "GiB", "TiB", "PiB") }

// scaled writes n in the largest unit (powers of base) that keeps the value at least 1.
func scaled(n int64, base float64, units ...string) string {
	v, u := float64(n)/base, 0
	for v >= base && u < len(units)-1 {
		v, u = v/base, u+1
	}
	return fmt.Sprintf("%.1f %s", v, units[u])
}

// Speed writes bytes per second in MB/s and MiB/s.
func Speed(bps float64) string {
	if bps <= 0 || math.IsNaN(bps) || math.IsInf(bps, 0) {
		return "—"
	}
	return fmt.Sprintf("%.1f MB/s (%.1f MiB/s)", bps/1e6, bps/(1<<20))
}

// Duration writes seconds as h m s.
func Duration(sec float64) string {
	if sec <= 0 {
		return "—"
	}
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	if d < time.Second {
		return fmt.Sprintf("%.2f s", sec)
	}
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%d h %02d min %02d s", h, m, s)
	case m > 0:
		return fmt.Sprintf("%d min %02d s", m, s)
	}
	return fmt.Sprintf("%d s", s)
}

// When writes a time in its own zone, the zone named, with UTC beside it:
// "2026-11-30 19:32:11 CET (UTC+01:00) · 2026-11-30 18:32:11 UTC".
func When(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Format("2006-01-02 15:04:05 MST (UTC-07:00)") + " · " + t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// compressionNames are E01 compression levels in words.
var compressionNames = map[string]string{
	"none":        "no compression",
	"empty-block": "empty blocks compressed only",
	"fast":        "deflate fast",
	"best":        "deflate best",
}

// Describe names a task's format and options as a person would ("E01, deflate fast, segments of
// 2 GiB") and lists them labelled, for the Acquisition section.
func Describe(o options.Task) (string, []Setting) {
	var parts []string
	var set []Setting
	add := func(name, v string) {
		if v != "" {
			set = append(set, Setting{name, v})
		}
	}
	segments := func(gb int) string {
		if gb <= 0 {
			return "one file"
		}
		return fmt.Sprintf("segments of %d GiB", gb)
	}
	switch o.Format {
	case options.E01:
		c := compressionNames[o.E01.Compression]
		if c == "" {
			c = o.E01.Compression + " compression"
		}
		parts = append(parts, "E01 (EWF, EnCase 6)", c, segments(o.E01.SegmentGB))
		add("Format", "E01 (Expert Witness Format, EnCase 6 layout)")
		add("Compression", c)
		add("Segments", segments(o.E01.SegmentGB))
	case options.AFF4:
		c := o.AFF4.Compression
		if c == "none" {
			c = "no compression"
		} else {
			c += " compression"
		}
		parts = append(parts, "AFF4", c, "one container")
		add("Format", "AFF4 (Advanced Forensic Format 4, standard v1.0)")
		add("Compression", c)
	case options.Raw:
		parts = append(parts, "raw (dd)", "uncompressed", "one file")
		add("Format", "raw (dd): the drive's bytes as they are")
	case options.L01:
		c := "no compression"
		if o.L01.Compress {
			c = "deflate compression"
		}
		parts = append(parts, "L01 (EWF logical)", c, segments(o.L01.SegmentGB))
		add("Format", "L01 (EWF logical evidence file)")
		add("Compression", c)
		add("Segments", segments(o.L01.SegmentGB))
	case options.Zip:
		c := "stored (no compression)"
		if o.Zip.Compress {
			c = "deflate compression"
		}
		parts = append(parts, "zip", c)
		add("Format", "zip archive")
		add("Compression", c)
	}
	if len(o.Hashes) > 0 {
		add("Hashes", strings.Join(o.Hashes, ", "))
	} else {
		add("Hashes", "none")
	}
	if o.Verify {
		add("Verification", "on: the written image is re-read and hashed again")
	} else {
		add("Verification", "off")
	}
	if !o.Format.Logical() {
		add("Retries", fmt.Sprintf("%d re-reads of a failing sector before it is zero-filled", o.Retries))
	}
	add("Target folder", o.Target.Folder)
	if o.Target.Login != "" {
		login := o.Target.Login
		if o.Target.Domain != "" {
			login = o.Target.Domain + `\` + login
		}
		add("Share login", login)
	}
	add("Mount options", o.Target.MountOptions)
	add("Image name", o.TargetFile)
	add("Preset", o.Settings)
	if o.Filter != nil {
		add("File filter", o.Filter.Name)
	}
	if o.Report != nil {
		add("Report folder", o.Report.Folder)
		add("Mount options", o.Report.MountOptions)
	}
	if o.SaveReport {
		add("Report beside the image", "yes")
	}
	return strings.Join(parts, ", "), set
}
