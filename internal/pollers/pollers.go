// Package pollers measures how fast an HTTP API answers while something else loads the machine,
// the way a lab's automation polls it: many clients, each on its own kept-alive connection, each
// asking at a steady interval, their phases spread over the interval. make bench uses it for the
// check-task answer time with four tasks imaging.
package pollers

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Config of a run.
type Config struct {
	URL      string
	Clients  int           // pollers, each with its own connection
	Interval time.Duration // between one poller's requests
}

// Result holds every answer time, and the requests that failed (transport error or a status
// other than 200).
type Result struct {
	Times  []time.Duration
	Errors int
}

// Quantile is the q-quantile (0 < q ≤ 1) of the answer times: the smallest time at least q of
// them do not exceed. Zero without times.
func (r Result) Quantile(q float64) time.Duration {
	if len(r.Times) == 0 {
		return 0
	}
	s := slices.Clone(r.Times)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Run polls until ctx ends and returns every answer time.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Clients < 1 || cfg.Interval <= 0 || cfg.URL == "" {
		return Result{}, fmt.Errorf("pollers: need a URL, at least one client and an interval (got %+v)", cfg)
	}
	var mu sync.Mutex
	var res Result
	var wg sync.WaitGroup
	for i := range cfg.Clients {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
			defer c.CloseIdleConnections()
			// Spread the pollers over the interval, as independent clients are.
			select {
			case <-ctx.Done():
				return
			case <-time.After(cfg.Interval * time.Duration(i) / time.Duration(cfg.Clients)):
			}
			tick := time.NewTicker(cfg.Interval)
			defer tick.Stop()
			for {
				d, err := poll(ctx, c, cfg.URL)
				if ctx.Err() != nil {
					return // cut off by the end, not an answer
				}
				mu.Lock()
				if err != nil {
					res.Errors++
				} else {
					res.Times = append(res.Times, d)
				}
				mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	wg.Wait()
	return res, nil
}

// poll makes one request and reads the whole answer: the time is until its last byte.
func poll(ctx context.Context, c *http.Client, url string) (time.Duration, error) {
	t0 := time.Now()
	if _, err := get(ctx, c, url); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}
