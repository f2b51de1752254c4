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
	a, err := parseAcquireFlags(args)
	if err != nil {
		return err
	}
	if a.cpuProfile != "" {
		stop, err := startCPUProfile(a.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	opts, err := a.options()
	if err != nil {
		return err
	}
	src, err := directio.Open(a.source)
	if err != nil {
		return err
	}
	defer src.Close()
	q, err := openAcquisition(a, opts, src)
	if err != nil {
		return err
	}
	defer q.close()
	// Held until acquire returns, not only while copying: a signal during finish or verification
	// is caught and does not kill the process.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := q.copy(ctx, a, opts.Hashes)
	if err != nil {
		return err
	}
	if err := output.Finish(q.img, res, 512); err != nil {
		return err
	}
	if tamper != nil {
		tamper(q.files())
	}
	sum := q.summary(a.source, string(opts.Format), res)
	if a.verify {
		ok, err := q.verify(opts.Hashes, res)
		if err != nil {
			return fmt.Errorf("verification failed: %w", err)
		}
		sum.Verified = &ok
	}
	if err := printSummary(os.Stdout, sum); err != nil {
		return err
	}
	log.Debug("acquired", "bytes", res.Bytes)
	return nil
}

// printSummary prints the summary as indented JSON; a verification that failed is an error, after
// the summary has told what was compared.
func printSummary(w io.Writer, sum acquireSummary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sum); err != nil {
		return err
	}
	if sum.Verified != nil && !*sum.Verified {
		return fmt.Errorf("verification failed: the image's hashes differ from the acquisition's")
	}
	return nil
}

// acquireFlags is acquire's command line as given; options turns it into the task options.
type acquireFlags struct {
	source, format, out, comp, hashes string
	segGB                             int
	caseInfo                          taskopts.Case
	verify                            bool
	workers, blockKiB, depth          int
	cpuProfile                        string
}

func parseAcquireFlags(args []string) (acquireFlags, error) {
	var a acquireFlags
	fs := flag.NewFlagSet("acquire", flag.ContinueOnError)
	fs.StringVar(&a.source, "source", "", "device or image file to acquire (opened read-only)")
	fs.StringVar(&a.format, "format", "e01", taskopts.List(taskopts.PhysicalFormats))
	fs.StringVar(&a.out, "out", "", "DIR/NAME of the image, without extension")
	fs.StringVar(&a.comp, "compression", "fast", "e01: none, empty-block, fast, best; aff4: lz4, snappy, deflate, none (fast = lz4)")
	fs.StringVar(&a.hashes, "hash", "md5,sha1", "hashes: md5, sha1, sha256, sha512 (comma separated)")
	fs.IntVar(&a.segGB, "segment-gb", 0, "e01 segment size in GB (0 = one file)")
	fs.StringVar(&a.caseInfo.Number, "case", "", "case number")
	fs.StringVar(&a.caseInfo.Evidence, "evidence", "", "evidence number")
	fs.StringVar(&a.caseInfo.Examiner, "examiner", "", "examiner")
	fs.StringVar(&a.caseInfo.Description, "description", "", "description")
	fs.BoolVar(&a.verify, "verify", true, "re-read the image and compare hashes (--verify=false to skip)")
	fs.IntVar(&a.workers, "workers", 0, "compression workers (0 = one per CPU, shared with the hashes at a lower priority)")
	fs.IntVar(&a.blockKiB, "block-kib", 1024, "read size in KiB")
	fs.IntVar(&a.depth, "depth", 4, "reads in flight")
	fs.StringVar(&a.cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of the acquisition to this file")
	err := fs.Parse(args)
	return a, err
}

// options checks that the required flags are there and builds the task options from the rest.
func (a acquireFlags) options() (taskopts.Task, error) {
	if a.source == "" || a.out == "" {
		return taskopts.Task{}, fmt.Errorf("usage: evidenced acquire --source PATH --format e01|aff4|raw --out DIR/NAME [flags]")
	}
	opts, err := acquireOptions(a.format, a.comp, a.hashes, a.segGB, a.caseInfo)
	if err != nil {
		return opts, err
	}
	opts.Verify = a.verify
	return opts, nil
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	pf, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(pf); err != nil {
		pf.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		pf.Close()
	}, nil
}

// acquisition is one run of acquire: the source and the image it is written to.
type acquisition struct {
	src   *directio.File
	dir   string        // the image's folder, absolute
	tgt   *target.Local // that folder; closed by close
	img   output.Image
	start time.Time // when the copy started
}

// openAcquisition opens the image's folder as a local target and creates the image of src there.
func openAcquisition(a acquireFlags, opts taskopts.Task, src *directio.File) (*acquisition, error) {
	dir, err := filepath.Abs(filepath.Dir(a.out))
	if err != nil {
		return nil, err
	}
	tgt, err := target.OpenLocal(dir, []string{dir})
	if err != nil {
		return nil, err
	}
	id := hal.Identity{Model: filepath.Base(a.source), Serial: "-", Size: src.Size(), SectorSize: 512, Bus: "file"}
	img, err := output.OpenImage(output.Spec{Options: opts, Base: filepath.Base(a.out), Identity: id, Software: "evidenced " + Version}, tgt, nil)
	if err != nil {
		tgt.Close()
		return nil, err
	}
	return &acquisition{src: src, dir: dir, tgt: tgt, img: img}, nil
}

// close releases the image's folder (the image itself is closed by copy or by its Finish).
func (q *acquisition) close() error { return q.tgt.Close() }

// copy reads the source into the image, drawing a progress bar when stderr is a terminal. On
// error the image is closed.
func (q *acquisition) copy(ctx context.Context, a acquireFlags, hashes []digest.Name) (pipeline.Result, error) {
	size := q.src.Size()
	rd := source.New(q.src, size, source.Config{BlockSize: a.blockKiB << 10, Depth: a.depth})
	tty := isTerminal(os.Stderr)
	q.start = time.Now()
	var bg *pipeline.Background
	if a.workers == 0 {
		// --workers N asks for N encoders of the run's own, at the process's priority.
		bg = pipeline.NewBackground()
		defer bg.Close()
	}
	res, err := pipeline.Run(ctx, rd, q.img.Writer(), pipeline.Config{
		Hashes: hashes, Workers: a.workers, ProgressEvery: 250 * time.Millisecond, Pad: q.img.Pad(),
		Background: bg,
		Progress: func(done int64) {
			if tty {
				progressBar(os.Stderr, done, size, time.Since(q.start))
			}
		},
	})
	if tty {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		q.img.Close()
		return res, fmt.Errorf("acquire: %w", err)
	}
	return res, nil
}

// files are the image's files, absolute.
func (q *acquisition) files() []string {
	var out []string
	for _, f := range q.img.Files() {
		out = append(out, filepath.Join(q.dir, f))
	}
	return out
}

// verify reads the image back and compares its hashes with the copy's. The image stores, and its
// readers compute, the hashes of the padded stream if it is padded.
func (q *acquisition) verify(hashes []digest.Name, res pipeline.Result) (bool, error) {
	stored := res.Hashes
	if res.PaddedHashes != nil {
		stored = res.PaddedHashes
	}
	return verifyImage(q.img, hashes, stored)
}

// summary is what acquire prints of a finished copy, timed until now; Verified is left to the caller.
func (q *acquisition) summary(source, format string, res pipeline.Result) acquireSummary {
	el := time.Since(q.start).Seconds()
	sum := acquireSummary{Source: source, Format: format, Files: q.files(), Bytes: res.Bytes, Seconds: el, Hashes: res.Hashes, Direct: q.src.Direct}
	if el > 0 {
		sum.MBps = float64(res.Bytes) / 1e6 / el
	}
	for _, r := range res.BadRanges {
		sum.UnreadableSectors += r.Count
	}
	if res.PaddedHashes != nil {
		pad := int64(q.img.Pad())
		sum.ImageBytes = (res.Bytes + pad - 1) / pad * pad
		sum.ImageHashes = res.PaddedHashes
		sum.Note = fmt.Sprintf("the source holds %d bytes, not whole %d-byte sectors: the image stores its last sector zero-padded to %d bytes; hashes are the source's, imageHashes the image's", res.Bytes, pad, sum.ImageBytes)
	}
	return sum
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
