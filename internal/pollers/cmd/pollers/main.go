// Command pollers polls a URL from many kept-alive clients until a stop file appears (or it is
// signalled), then prints the answer times' quantiles, for make bench:
//
//	pollers -url 'http://127.0.0.1:8080/api/check-task?taskKey=K' -clients 50 -interval 200ms -stop-file F
//
// Output, one line: p50 p90 p99 max in milliseconds, then the number of answers and of errors.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/evidenced/evidenced/internal/pollers"
)

func main() {
	var cfg pollers.Config
	flag.StringVar(&cfg.URL, "url", "", "URL to poll")
	flag.IntVar(&cfg.Clients, "clients", 50, "pollers, each on its own connection")
	flag.DurationVar(&cfg.Interval, "interval", 200*time.Millisecond, "time between one poller's requests")
	stop := flag.String("stop-file", "", "stop when this file exists")
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if *stop != "" {
		go func() {
			for ctx.Err() == nil {
				if _, err := os.Stat(*stop); err == nil {
					cancel()
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	res, err := pollers.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ms := func(q float64) float64 { return float64(res.Quantile(q)) / 1e6 }
	fmt.Printf("%.2f %.2f %.2f %.2f %d %d\n", ms(0.5), ms(0.9), ms(0.99), ms(1), len(res.Times), res.Errors)
}
