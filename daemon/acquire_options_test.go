package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/formats/digest"
	taskopts "github.com/evidenced/evidenced/imaging/options"
)

// acquire's flags become the same typed options the API builds from a request.
func TestAcquireOptions(t *testing.T) {
	c := taskopts.Case{Number: "C1", Examiner: "Ann"}
	for _, tc := range []struct {
		format, comp, hashes string
		seg                  int
		check                func(taskopts.Task) bool
		err                  string
	}{
		{"E01", "best", "md5, SHA1", 2, func(o taskopts.Task) bool {
			return o.Format == taskopts.E01 && o.E01 == taskopts.E01Options{Compression: "best", SegmentGB: 2} &&
				slices.Equal(o.Hashes, []digest.Name{digest.MD5, digest.SHA1}) && o.Case == c
		}, ""},
		{"aff4", "fast", "sha256", 0, func(o taskopts.Task) bool {
			return o.Format == taskopts.AFF4 && o.AFF4.Compression == "lz4" && slices.Equal(o.Hashes, []digest.Name{digest.SHA256})
		}, ""},
		{"aff4", "deflate", "md5", 0, func(o taskopts.Task) bool { return o.AFF4.Compression == "deflate" }, ""},
		{"raw", "fast", "sha512", 0, func(o taskopts.Task) bool { return o.Format == taskopts.Raw && o.Hashes[0] == "SHA512" }, ""},
		{"vmdk", "fast", "md5", 0, nil, "--format"},
		{"e01", "ultra", "md5", 0, nil, "--compression"},
		{"aff4", "best", "md5", 0, nil, "--compression"},
		{"e01", "fast", "crc32", 0, nil, "unknown hash"},
		{"e01", "fast", "md5", -1, nil, "--segment-gb"},
	} {
		o, err := acquireOptions(tc.format, tc.comp, tc.hashes, tc.seg, c)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: error %v, want %q", tc, err, tc.err)
			}
			continue
		}
		if err != nil || !tc.check(o) {
			t.Errorf("%s/%s/%s: %+v %v", tc.format, tc.comp, tc.hashes, o, err)
		}
	}
}
