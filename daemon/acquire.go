package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/formats/digest"
	"github.com/evidenced/evidenced/formats/ewf"
	"github.com/evidenced/evidenced/hal"
	taskopts "github.com/evidenced/evidenced/imaging/options"
	"github.com/evidenced/evidenced/imaging/output"
	"github.com/evidenced/evidenced/imaging/pipeline"
	"github.com/evidenced/evidenced/imaging/source"
	"github.com/evidenced/evidenced/imaging/target"
	"github.com/evidenced/evidenced/internal/directio"
)

// acquireSummary is the JSON printed when `evidenced acquire` ends.
type acquireSummary struct {
	Source  string            `json:"source"`
	Format  string            `json:"format"`
	Files   []string          `json:"files"`
	Bytes   int64             `json:"bytes"`
	Seconds float64           `json:"seconds"`
	MBps    float64           `json:"mbps"`
	Hashes  map[string]string `json:"hashes"`
	// ImageBytes and ImageHashes are set when the image stores the source zero-padded to whole
	// sectors (E01 of a source whose size is not a multiple of 512): Bytes and Hashes are the
	// source's own, these are what readers of the image (ewfverify) compute.
	ImageBytes        int64             `json:"imageBytes,omitempty"`
	ImageHashes       map[string]string `json:"imageHashes,omitempty"`
	Note              string            `json:"note,omitempty"`
	UnreadableSectors int64             `json:"unreadableSectors"`
	Verified          *bool             `json:"verified,omitempty"`
	Direct            bool              `json:"directIO"`
}

// acquireCmd images one device or file with the same engine as the daemon.
func acquireCmd(args []string, log *slog.Logger) error {
	return acquire(args, log, nil)
}

// acquire is acquireCmd; tamper, when set, gets the image's files after they are closed and before
// they are verified (tests corrupt them to see verification fail).
func acquire(args []string, log *slog.Logger, tamper func(files []string)) error {
	fs := flag.NewFlagSet("acquire", flag.ContinueOnError)
	srcPath := fs.String("source", "", "device or image file to acquire (opened read-only)")
	format := fs.String("format", "e01", taskopts.List(taskopts.PhysicalFormats))
	out := fs.String("out", "", "DIR/NAME of the image, without extension")
	comp := fs.String("compression", "fast", "e01: none, empty-block, fast, best; aff4: lz4, snappy, deflate, none (fast = lz4)")
	hashes := fs.String("hash", "md5,sha1", "hashes: md5, sha1, sha256, sha512 (comma separated)")
	segGB := fs.Int("segment-gb", 0, "e01 segment size in GB (0 = one file)")
	caseNo := fs.String("case", "", "case number")
	evid := fs.String("evidence", "", "evidence number")
	examiner := fs.String("examiner", "", "examiner")
	desc := fs.String("description", "", "description")
	verify := fs.Bool("verify", true, "re-read the image and compare hashes (--verify=false to skip)")
	workers := fs.Int("workers", 0, "compression workers (0 = all CPUs)")
	blockKiB := fs.Int("block-kib", 1024, "read size in KiB")
	depth := fs.Int("depth", 4, "reads in flight")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) of the acquisition to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if *srcPath == "" || *out == "" {
		return fmt.Errorf("usage: evidenced acquire --source PATH --format e01|aff4|raw --out DIR/NAME [flags]")
	}
	opts, err := acquireOptions(*format, *comp, *hashes, *segGB, taskopts.Case{Number: *caseNo, Evidence: *evid, Examiner: *examiner, Description: *desc})
	if err != nil {
		return err
	}
	opts.Verify = *verify
	typ, hs := string(opts.Format), opts.Hashes
	src, err := directio.Open(*srcPath)
	if err != nil {
		return err
	}
	defer src.Close()
	dir, base := filepath.Dir(*out), filepath.Base(*out)
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	tgt, err := target.OpenLocal(absDir, []string{absDir})
	if err != nil {
		return err
	}
	id := hal.Identity{Model: filepath.Base(*srcPath), Serial: "-", Size: src.Size(), SectorSize: 512, Bus: "file"}
	img, err := output.OpenImage(output.Spec{Options: opts, Base: base, Identity: id, Software: "evidenced " + Version}, tgt, nil)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rd := source.New(src, src.Size(), source.Config{BlockSize: *blockKiB << 10, Depth: *depth})
	tty := isTerminal(os.Stderr)
	start := time.Now()
	res, err := pipeline.Run(ctx, rd, img.Writer(), pipeline.Config{
		Hashes: hs, Workers: *workers, ProgressEvery: 250 * time.Millisecond, Pad: img.Pad(),
		Progress: func(done int64) {
			if tty {
				progressBar(os.Stderr, done, src.Size(), time.Since(start))
			}
		},
	})
	if tty {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		img.Close()
		return fmt.Errorf("acquire: %w", err)
	}
	if err := output.Finish(img, res, 512); err != nil {
		return err
	}
	// The image stores, and its readers compute, the hashes of the padded stream if it is padded.
	stored := res.Hashes
	if res.PaddedHashes != nil {
		stored = res.PaddedHashes
	}
	if tamper != nil {
		var files []string
		for _, f := range img.Files() {
			files = append(files, filepath.Join(absDir, f))
		}
		tamper(files)
	}
	el := time.Since(start).Seconds()
	sum := acquireSummary{Source: *srcPath, Format: typ, Bytes: res.Bytes, Seconds: el, Hashes: res.Hashes, Direct: src.Direct}
	for _, f := range img.Files() {
		sum.Files = append(sum.Files, filepath.Join(absDir, f))
	}
	if el > 0 {
		sum.MBps = float64(res.Bytes) / 1e6 / el
	}
	for _, r := range res.BadRanges {
		sum.UnreadableSectors += r.Count
	}
	if res.PaddedHashes != nil {
		sum.ImageBytes = (res.Bytes + int64(img.Pad()) - 1) / int64(img.Pad()) * int64(img.Pad())
		sum.ImageHashes = res.PaddedHashes
		sum.Note = fmt.Sprintf("the source holds %d bytes, not whole %d-byte sectors: the image stores its last sector zero-padded to %d bytes; hashes are the source's, imageHashes the image's", res.Bytes, img.Pad(), sum.ImageBytes)
	}
	if *verify {
		ok, err := verifyImage(img, hs, stored)
		if err != nil {
			return fmt.Errorf("verification failed: %w", err)
		}
		sum.Verified = &ok
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sum); err != nil {
		return err
	}
	if sum.Verified != nil && !*sum.Verified {
		return fmt.Errorf("verification failed: the image's hashes differ from the acquisition's")
	}
	log.Debug("acquired", "bytes", res.Bytes)
	return nil
}

// acquireOptions builds the task options from acquire's flags, as the API builds them from a
// request: the same struct reaches the formats.
func acquireOptions(format, comp, hashes string, segGB int, c taskopts.Case) (taskopts.Task, error) {
	f := taskopts.Format(strings.ToLower(strings.TrimSpace(format)))
	if !slices.Contains(taskopts.PhysicalFormats, f) {
		return taskopts.Task{}, fmt.Errorf("--format %q: accepted values are %s", format, taskopts.List(taskopts.PhysicalFormats))
	}
	o := taskopts.Default(f)
	o.Case = c
	o.Hashes = nil
	for _, h := range strings.Split(hashes, ",") {
		if h = strings.TrimSpace(h); h != "" {
			n, err := digest.Parse(h)
			if err != nil {
				return o, err
			}
			o.Hashes = append(o.Hashes, n)
		}
	}
	if segGB < 0 {
		return o, fmt.Errorf("--segment-gb %d: a whole number of GB, 0 for one file", segGB)
	}
	switch f {
	case taskopts.E01:
		ec, err := ewf.ParseCompression(comp)
		if err != nil {
			return o, fmt.Errorf("--compression %q: accepted for e01 are none, empty-block, fast, best", comp)
		}
		o.E01 = taskopts.E01Options{Compression: ec.String(), SegmentGB: segGB}
	case taskopts.AFF4:
		switch c := strings.ToLower(comp); c {
		case "fast", "lz4":
			o.AFF4.Compression = "lz4"
		case "snappy", "deflate", "none":
			o.AFF4.Compression = c
		default:
			return o, fmt.Errorf("--compression %q: accepted for aff4 are lz4, snappy, deflate, none", comp)
		}
	}
	return o, nil
}

func verifyImage(img output.Image, names []digest.Name, want map[string]string) (bool, error) {
	r, closeFn, err := img.ReadBack()
	if err != nil {
		return false, err
	}
	defer closeFn()
	got, err := pipeline.HashStream(context.Background(), r, names, nil)
	if err != nil {
		return false, fmt.Errorf("verify: %w", err)
	}
	for n, s := range got {
		if s != want[n] {
			return false, nil
		}
	}
	return true, nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func progressBar(w io.Writer, done, total int64, el time.Duration) {
	const width = 40
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	n := int(frac * width)
	rate := float64(done) / 1e6 / max(el.Seconds(), 1e-3)
	fmt.Fprintf(w, "\r[%s%s] %5.1f%%  %8.1f MB/s", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, rate)
}
