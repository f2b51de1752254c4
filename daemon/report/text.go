package report

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evidenced/evidenced/formats/digest"
)

// WriteJSON writes the report as indented JSON: the same content as the HTML, typed (sizes in
// bytes, times as RFC 3339 in the report's zone, durations in seconds). The bytes are those of
// json.MarshalIndent(r, "", "  ") (TestWriteJSONIsMarshalIndent, FuzzWriteJSON), but a logical
// task's file list goes out an entry at a time: marshalled whole, the 52,760 entries of the 2 GiB
// corpus took 0.35 s of CPU, most of it growing and copying a 10 MB buffer twice, the longest
// step between the end of the copy and the end of the task.
func WriteJSON(w io.Writer, r *Report) error {
	if err := writeJSON(w, r); err != nil {
		return fmt.Errorf("write Report.json: %w", err)
	}
	return nil
}

// filesHole is what the file list marshals to when it is left out of the rest of the report: the
// one place it can appear unescaped (a string's quotes are escaped, a volume's count is a number).
const filesHole = `"files": null`

func writeJSONWhole(w io.Writer, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func writeJSON(w io.Writer, r *Report) error {
	if r.Logical == nil || len(r.Logical.Files) == 0 {
		return writeJSONWhole(w, r)
	}
	rest, l := *r, *r.Logical
	l.Files, rest.Logical = nil, &l
	b, err := json.MarshalIndent(&rest, "", "  ")
	if err != nil {
		return err
	}
	at := bytes.Index(b, []byte(filesHole))
	if at < 0 || bytes.Count(b, []byte(filesHole)) != 1 {
		return writeJSONWhole(w, r) // cannot happen (see filesHole); the report still goes out
	}
	lineStart := bytes.LastIndexByte(b[:at], '\n') + 1
	outer := string(b[lineStart:at]) // the indentation of the "files" line
	inner := outer + "  "
	bw := bufio.NewWriterSize(w, 256<<10)
	bw.Write(b[:at])
	bw.WriteString(`"files": [`)
	var one, ind bytes.Buffer
	enc := json.NewEncoder(&one)
	for i := range r.Logical.Files {
		one.Reset()
		ind.Reset()
		if err := enc.Encode(&r.Logical.Files[i]); err != nil {
			return err
		}
		if err := json.Indent(&ind, bytes.TrimSuffix(one.Bytes(), []byte{'\n'}), inner, "  "); err != nil {
			return err
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteByte('\n')
		bw.WriteString(inner)
		bw.Write(ind.Bytes())
	}
	bw.WriteByte('\n')
	bw.WriteString(outer + "]")
	bw.Write(b[at+len(filesHole):])
	bw.WriteByte('\n')
	return bw.Flush()
}

func sortAlgorithms(names []string) { slices.SortFunc(names, digest.Compare) }

// WriteHashes writes Hashes.txt: a line per image file and algorithm in the tagged form
// ("MD5 (../name.raw) = ...") that `cksum -c` (GNU coreutils 9) checks for every algorithm at once,
// with the file named relative to the report folder beside the image; run it from that folder.
// md5sum -c and sha1sum -c check their own lines too, and warn that the others' are not theirs.
// Lines starting with # are comments: they say what the hashes cover, and carry the acquisition
// hashes of formats whose files are not the data stream (E01, AFF4, L01), which ewfverify or an
// AFF4 reader checks.
func WriteHashes(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s of %s %s (%s), task %s\n", r.Title, r.Source.Model, r.Source.Serial, Bytes(r.Source.Size), r.Task.Key)
	if a := r.Acquisition; a != nil {
		fmt.Fprintf(&b, "# %s; started %s\n", a.Summary, When(a.Started))
	}
	fmt.Fprintf(&b, "# %s on appliance %s; state %s\n", r.Appliance.Software, r.Appliance.ID, r.Result.State)
	if h := r.Hashes; h != nil {
		for _, line := range wrap(h.Covers, 96) {
			fmt.Fprintf(&b, "# %s\n", line)
		}
		for _, row := range h.Rows {
			fmt.Fprintf(&b, "# acquisition %s %s\n", row.Algorithm, row.Acquisition)
		}
		fmt.Fprintf(&b, "# verification: %s\n", h.Verdict)
	}
	var algs []string
	for _, f := range r.ImageFiles {
		for a := range f.Hashes {
			if !slices.Contains(algs, a) {
				algs = append(algs, a)
			}
		}
	}
	sortAlgorithms(algs)
	if len(algs) > 0 {
		b.WriteString("# Check from the report folder: cksum -c Hashes.txt (or md5sum -c, sha1sum -c: each checks its own lines)\n")
	}
	for _, a := range algs {
		for _, f := range r.ImageFiles {
			if sum := f.Hashes[a]; sum != "" {
				fmt.Fprintf(&b, "%s (../%s) = %s\n", a, f.Name, sum)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// wrap cuts text into lines of at most n bytes at spaces.
func wrap(s string, n int) []string {
	var out []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > n {
			out = append(out, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		out = append(out, line)
	}
	return out
}

// WriteFilesCSV writes a logical task's complete file list as CSV (RFC 4180), one entry a line.
func WriteFilesCSV(w io.Writer, l *Logical) error {
	cw := csv.NewWriter(w)
	rec := []string{"path", "type", "size", "modified_utc", "deleted", "md5", "sha1", "error"}
	if err := cw.Write(rec); err != nil {
		return fmt.Errorf("write Files.csv: %w", err)
	}
	for _, f := range l.Files {
		typ, size := "file", strconv.FormatInt(f.Size, 10)
		if f.Dir {
			typ, size = "folder", ""
		}
		mod := ""
		if !f.Modified.IsZero() {
			mod = f.Modified.UTC().Format(time.RFC3339)
		}
		rec = []string{f.Path, typ, size, mod, strconv.FormatBool(f.Deleted), f.MD5, f.SHA1, f.Err}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write Files.csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write Files.csv: %w", err)
	}
	return nil
}
