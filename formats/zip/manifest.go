package zip

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Manifest columns, in order; the requested hashes go between "deleted" and "error". The JSON
// objects use the same names as keys.
var (
	manifestHead = []string{"path", "type", "size", "created", "modified", "accessed", "changed", "deleted"}
	manifestTail = "error"
)

// cells renders a row as strings, shared by the CSV and JSON writers so both always agree. Unknown
// times, hashes and sizes are empty strings; size is the byte count of the member (see AddFile).
func (w *Writer) cells(r row) []string {
	c := make([]string, 0, len(manifestHead)+len(w.hashes)+1)
	typ := "file"
	if r.dir {
		typ = "dir"
	}
	size := ""
	if r.size >= 0 {
		size = strconv.FormatInt(r.size, 10)
	}
	c = append(c, r.path, typ, size)
	for _, t := range r.times {
		s := ""
		if !t.IsZero() {
			// Nanoseconds kept: NTFS and ext4 record them, and the manifest is the record of truth.
			s = t.Format(time.RFC3339Nano)
		}
		c = append(c, s)
	}
	c = append(c, strconv.FormatBool(r.deleted))
	for i := range w.hashes {
		s := ""
		if r.sums != nil {
			s = r.sums[i]
		}
		c = append(c, s)
	}
	return append(c, r.err)
}

func (w *Writer) columns() []string {
	c := append(append([]string(nil), manifestHead...), w.hashes...)
	return append(c, manifestTail)
}

func (w *Writer) writeCSV(out io.Writer) error {
	cw := csv.NewWriter(out)
	cw.UseCRLF = true // RFC 4180
	if err := cw.Write(w.columns()); err != nil {
		return err
	}
	for _, r := range w.rows {
		if err := cw.Write(w.cells(r)); err != nil {
			return fmt.Errorf("row %q: %w", r.path, err)
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeJSON streams an array of objects, one per line, with keys in column order; size is a number
// (null when unknown), deleted a boolean, everything else a string.
func (w *Writer) writeJSON(out io.Writer) error {
	bw := bufio.NewWriter(out)
	cols := w.columns()
	bw.WriteString("[")
	for i, r := range w.rows {
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n{")
		for j, v := range w.cells(r) {
			if j > 0 {
				bw.WriteString(",")
			}
			key, _ := json.Marshal(cols[j])
			bw.Write(key)
			bw.WriteString(":")
			switch {
			case cols[j] == "size" && v == "":
				bw.WriteString("null")
			case cols[j] == "size" || cols[j] == "deleted":
				bw.WriteString(v) // already a JSON number / boolean
			default:
				s, err := json.Marshal(v)
				if err != nil {
					return fmt.Errorf("row %q: %w", r.path, err)
				}
				bw.Write(s)
			}
		}
		bw.WriteString("}")
	}
	bw.WriteString("\n]\n")
	return bw.Flush() // bufio keeps the first write error
}
