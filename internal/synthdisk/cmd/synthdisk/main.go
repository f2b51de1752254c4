// Command synthdisk writes a generated test disk (see package synthdisk) to a file, for make bench.
//
//	synthdisk -kind text -mib 256 -out var/cache/text-256.img
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/evidenced/evidenced/internal/synthdisk"
)

func main() {
	kind := flag.String("kind", "text", "text or compressed")
	mib := flag.Int64("mib", 256, "size in MiB")
	out := flag.String("out", "", "output file")
	seed := flag.Uint64("seed", 1, "generator seed")
	flag.Parse()
	if err := run(synthdisk.Kind(*kind), *mib<<20, *out, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "synthdisk:", err)
		os.Exit(1)
	}
}

func run(kind synthdisk.Kind, size int64, out string, seed uint64) error {
	if out == "" {
		return fmt.Errorf("-out is required")
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := synthdisk.Write(f, kind, size, seed); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
