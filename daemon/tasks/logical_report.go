package tasks

import (
	"github.com/evidenced/evidenced/daemon/report"
	"github.com/evidenced/evidenced/imaging/logical"
)

// logicalReport is the logical task's part of the report: volumes, errors, and every entry with
// its hashes (the per-volume counts are made when the report is rendered).
func logicalReport(vols []logical.Volume, state map[int]string, files []logicalResult, problems []string) *report.Logical {
	l := &report.Logical{Volumes: make([]report.Volume, 0, len(vols)), Problems: append([]string{}, problems...), Files: make([]report.File, 0, len(files))}
	for i, v := range vols {
		st := state[i]
		if st == "" {
			st = "not reached"
		}
		l.Volumes = append(l.Volumes, report.Volume{Name: volumeName(v), Scheme: v.Scheme, PartType: v.PartType, FS: v.FS, Label: v.Label,
			Offset: v.Offset, Size: v.Size, State: st})
	}
	for _, f := range files {
		l.Files = append(l.Files, report.File{Path: f.Path, Dir: f.Dir, Size: f.Size, Modified: f.Modified, Deleted: f.Deleted, MD5: f.MD5, SHA1: f.SHA1, Err: f.Err})
	}
	return l
}
