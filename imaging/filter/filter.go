// Package filter holds the named filter presets ("settings") examiners save to select the files of
// a logical acquisition, and the matching of files against them.
//
// Semantics:
//   - Every criterion that is given must hold (AND between kinds); within a list any entry may
//     match (OR). A filter with no criteria selects every file that is not deleted.
//   - Extensions match the end of the base name, case-insensitively, with or without the leading
//     dot: "pl", ".PL" and "tar.gz" all work ("x.tar.gz" has extension "gz" and "tar.gz").
//   - Paths and ExcludePaths are globs matched, case-sensitively, against the path exactly as the
//     caller gives it (e.g. "p1-ext4/usr/share/perl/5.36/strict.pm", no leading slash). "*"
//     matches within a segment, "?" one character, "[abc]"/"[a-z]"/"[^a]" a class, "\\" escapes;
//     a "**" segment matches any number of segments: zero at the start or in the middle
//     ("**/x" matches "x"; "a/**/b" matches "a/b"), at least one at the end ("a/**" matches
//     everything below a, not a itself). A pattern without "/" matches the base name at any depth,
//     like gitignore; a leading "/" only anchors (it is dropped); a trailing "/" means everything
//     below ("**/cache/" is "**/cache/**"). An excluded file is never selected.
//   - Sizes and modification bounds are inclusive. A file whose modification time is unknown (zero)
//     fails any date bound, since it cannot be shown to lie in the range.
//   - Deleted files are selected only with IncludeDeleted.
//
// In JSON, modifiedAfter and modifiedBefore take RFC 3339 ("2024-03-01T12:00:00Z") or a plain
// date ("2024-03-01") read in UTC: as a lower bound it means the start of that day, as an upper
// bound its end (23:59:59.999999999), so both days named are included.
package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// Filter is one saved preset.
type Filter struct {
	Name           string     `json:"name"`
	Extensions     []string   `json:"extensions,omitempty"`     // "pl" or ".pl", case-insensitive; any matches
	Paths          []string   `json:"paths,omitempty"`          // globs on the full slash path; any matches
	ExcludePaths   []string   `json:"excludePaths,omitempty"`   // globs; any match excludes
	MinSize        *int64     `json:"minSize,omitempty"`        // bytes, inclusive
	MaxSize        *int64     `json:"maxSize,omitempty"`        // bytes, inclusive
	ModifiedAfter  *time.Time `json:"modifiedAfter,omitempty"`  // inclusive
	ModifiedBefore *time.Time `json:"modifiedBefore,omitempty"` // inclusive
	IncludeDeleted bool       `json:"includeDeleted,omitempty"`
}

// File is what Match looks at; callers fill it from the file system walk.
type File struct {
	Path     string // slash-separated, as it will appear in the evidence (no leading slash)
	Size     int64
	Modified time.Time // zero when unknown
	Deleted  bool
}

// MaxNameLen bounds preset names (they show in the UI and in file names of exports).
const MaxNameLen = 64

// Parse decodes a preset strictly (unknown fields, trailing data and wrong types are errors) and
// validates it.
func Parse(data []byte) (Filter, error) {
	var f Filter
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Filter{}, fmt.Errorf("filter: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Filter{}, errors.New("filter: unexpected data after the JSON object")
	}
	if err := f.Validate(); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// wire is Filter as decoded from JSON: the dates are parsed by hand to accept plain days and to
// name the field in errors.
type wire struct {
	Name           string   `json:"name"`
	Extensions     []string `json:"extensions"`
	Paths          []string `json:"paths"`
	ExcludePaths   []string `json:"excludePaths"`
	MinSize        *int64   `json:"minSize"`
	MaxSize        *int64   `json:"maxSize"`
	ModifiedAfter  *string  `json:"modifiedAfter"`
	ModifiedBefore *string  `json:"modifiedBefore"`
	IncludeDeleted bool     `json:"includeDeleted"`
}

// UnmarshalJSON is strict in every context (a preset embedded in a settings file too): unknown
// fields are errors, and dates may be plain days.
func (f *Filter) UnmarshalJSON(data []byte) error {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// The default message names the internal type; say it in the preset's terms.
			if te.Field == "" {
				return fmt.Errorf("want a JSON object, got a JSON %s", te.Value)
			}
			return fmt.Errorf("%s: want %s, got a JSON %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return err
	}
	after, err := parseBound("modifiedAfter", w.ModifiedAfter, false)
	if err != nil {
		return err
	}
	before, err := parseBound("modifiedBefore", w.ModifiedBefore, true)
	if err != nil {
		return err
	}
	*f = Filter{
		Name: w.Name, Extensions: w.Extensions, Paths: w.Paths, ExcludePaths: w.ExcludePaths,
		MinSize: w.MinSize, MaxSize: w.MaxSize, ModifiedAfter: after, ModifiedBefore: before,
		IncludeDeleted: w.IncludeDeleted,
	}
	return nil
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"):
		return "an integer"
	case k == "slice":
		return "an array of strings"
	case k == "bool":
		return "true or false"
	}
	return "a " + k
}

// parseBound reads RFC 3339 or a date in UTC; a date as an upper bound means the end of that day.
func parseBound(field string, s *string, upper bool) (*time.Time, error) {
	if s == nil {
		return nil, nil
	}
	if t, err := time.Parse(time.DateOnly, *s); err == nil {
		if upper {
			t = t.AddDate(0, 0, 1).Add(-time.Nanosecond)
		}
		return &t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return nil, fmt.Errorf("%s: %q is neither an RFC 3339 time (2006-01-02T15:04:05Z) nor a date (2006-01-02)", field, *s)
	}
	return &t, nil
}

// Validate checks a preset; the error lists every problem, each naming its field.
func (f Filter) Validate() error {
	var errs []error
	if err := checkName(f.Name); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, extensionErrors(f.Extensions)...)
	errs = append(errs, globErrors("paths", f.Paths)...)
	errs = append(errs, globErrors("excludePaths", f.ExcludePaths)...)
	errs = append(errs, f.rangeErrors()...)
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("filter %q: %w", f.Name, errors.Join(errs...))
}

// checkName accepts a preset name of 1 to MaxNameLen letters, digits, spaces, '_', '.' and '-'.
func checkName(n string) error {
	switch {
	case n == "":
		return errors.New("name: required")
	case len(n) > MaxNameLen:
		return fmt.Errorf("name: %d characters, at most %d", len(n), MaxNameLen)
	}
	for _, c := range n {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune(" _.-", c)) {
			return fmt.Errorf("name: %q has %q; use letters, digits, space, '_', '.', '-'", n, c)
		}
	}
	return nil
}

func extensionErrors(exts []string) []error {
	var errs []error
	for i, e := range exts {
		x := strings.TrimPrefix(e, ".")
		if x == "" || strings.ContainsAny(x, "/\x00") || strings.HasPrefix(x, ".") || strings.HasSuffix(x, ".") {
			errs = append(errs, fmt.Errorf("extensions[%d]: %q is not an extension like \"pl\" or \".tar.gz\"", i, e))
		}
	}
	return errs
}

// globErrors checks the globs of one field (paths, excludePaths).
func globErrors(field string, globs []string) []error {
	var errs []error
	for i, g := range globs {
		if err := checkGlob(g); err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %q: %v", field, i, g, err))
		}
	}
	return errs
}

// rangeErrors checks the size and modification time bounds.
func (f Filter) rangeErrors() []error {
	var errs []error
	if f.MinSize != nil && *f.MinSize < 0 {
		errs = append(errs, fmt.Errorf("minSize: %d is negative", *f.MinSize))
	}
	if f.MaxSize != nil && *f.MaxSize < 0 {
		errs = append(errs, fmt.Errorf("maxSize: %d is negative", *f.MaxSize))
	}
	if f.MinSize != nil && f.MaxSize != nil && *f.MinSize > *f.MaxSize {
		errs = append(errs, fmt.Errorf("minSize: %d is greater than maxSize %d", *f.MinSize, *f.MaxSize))
	}
	if f.ModifiedAfter != nil && f.ModifiedBefore != nil && f.ModifiedAfter.After(*f.ModifiedBefore) {
		errs = append(errs, fmt.Errorf("modifiedAfter: %s is later than modifiedBefore %s",
			f.ModifiedAfter.Format(time.RFC3339Nano), f.ModifiedBefore.Format(time.RFC3339Nano)))
	}
	return errs
}

// Match reports whether a file is selected. It expects a valid filter: a malformed glob matches
// nothing.
func (f Filter) Match(x File) bool {
	if x.Deleted && !f.IncludeDeleted {
		return false
	}
	if f.MinSize != nil && x.Size < *f.MinSize || f.MaxSize != nil && x.Size > *f.MaxSize {
		return false
	}
	if f.ModifiedAfter != nil && (x.Modified.IsZero() || x.Modified.Before(*f.ModifiedAfter)) {
		return false
	}
	if f.ModifiedBefore != nil && (x.Modified.IsZero() || x.Modified.After(*f.ModifiedBefore)) {
		return false
	}
	if len(f.Extensions) > 0 && !matchExt(f.Extensions, path.Base(x.Path)) {
		return false
	}
	if len(f.Paths) > 0 && !matchAny(f.Paths, x.Path) {
		return false
	}
	return !matchAny(f.ExcludePaths, x.Path)
}

func matchExt(exts []string, base string) bool {
	base = strings.ToLower(base)
	for _, e := range exts {
		if strings.HasSuffix(base, "."+strings.ToLower(strings.TrimPrefix(e, "."))) {
			return true
		}
	}
	return false
}

func matchAny(globs []string, p string) bool {
	for _, g := range globs {
		if matchGlob(g, p) {
			return true
		}
	}
	return false
}

// splitGlob turns a pattern into segments, applying the leading/trailing slash rules; base
// reports a pattern that applies to the base name only.
func splitGlob(g string) (segs []string, base bool) {
	if !strings.Contains(g, "/") {
		return []string{g}, true
	}
	g = strings.TrimPrefix(g, "/")
	if strings.HasSuffix(g, "/") {
		g += "**"
	}
	return strings.Split(g, "/"), false
}

func checkGlob(g string) error {
	if g == "" {
		return errors.New("empty pattern")
	}
	if strings.IndexByte(g, 0) >= 0 {
		return errors.New("contains NUL")
	}
	segs, _ := splitGlob(g)
	for _, s := range segs {
		if s == "" {
			return errors.New("empty segment (\"//\", or only \"/\")")
		}
		// path.Match reports a malformed pattern even when the match fails early.
		if _, err := path.Match(s, ""); err != nil {
			return fmt.Errorf("bad segment %q (unclosed \"[\" or trailing \"\\\")", s)
		}
	}
	return nil
}

func matchGlob(g, p string) bool {
	segs, base := splitGlob(g)
	if base {
		ok, _ := path.Match(g, path.Base(p))
		return ok
	}
	return matchSegs(segs, strings.Split(p, "/"))
}

// matchSegs matches segment by segment; "**" tries every split. Paths are a few dozen segments at
// most, so the backtracking stays cheap.
func matchSegs(pat, p []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for len(pat) > 1 && pat[1] == "**" {
				pat = pat[1:]
			}
			rest := pat[1:]
			if len(rest) == 0 {
				return len(p) > 0 // trailing "**": something below
			}
			for i := 0; i <= len(p); i++ {
				if matchSegs(rest, p[i:]) {
					return true
				}
			}
			return false
		}
		if len(p) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], p[0]); !ok {
			return false
		}
		pat, p = pat[1:], p[1:]
	}
	return len(p) == 0
}
