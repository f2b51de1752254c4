// Command runtasks starts tasks through the daemon's API and waits for all of them to complete,
// for make bench, which times its API rows with it:
//
//	runtasks -api http://127.0.0.1:8080 -interval 50ms -keys-file F '/api/start-image?source=SATA1&targetFolder=/t' ...
//
// Output, one line: the seconds from the first start to the last completion, then the task keys.
// The keys are also written to -keys-file as soon as every task has started (one per line), so
// that a load can be aimed at them during the run. A task that fails or is stopped exits 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/evidenced/evidenced/internal/pollers"
)

func main() {
	var t pollers.Tasks
	flag.StringVar(&t.API, "api", "", "the daemon's base URL")
	flag.DurationVar(&t.Interval, "interval", 50*time.Millisecond, "time between two rounds of check-task")
	keysFile := flag.String("keys-file", "", "write the task keys here once they have started")
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var werr error
	run, err := t.Run(ctx, flag.Args(), func(keys []string) {
		if *keysFile != "" {
			werr = os.WriteFile(*keysFile, []byte(strings.Join(keys, "\n")+"\n"), 0o644)
		}
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "runtasks:", err)
		os.Exit(1)
	}
	fmt.Printf("%.3f %s\n", run.Elapsed.Seconds(), strings.Join(run.Keys, " "))
}
