package pollers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Tasks starts tasks through the API and times them until each has completed, polling check-task
// on one kept-alive connection. make bench times its API rows with it: the shell loop it replaces
// started a curl and a sed per poll, and on a 2-core VM where a process start costs 20-40 ms of
// CPU, polling every 50 ms that way took about half a core from the imaging being timed (an E01 of
// the corpus through the API, 8.5-8.9 s with it, 6.7-6.8 s without).
type Tasks struct {
	API      string        // the daemon's base URL, e.g. http://127.0.0.1:8080
	Interval time.Duration // between two rounds of check-task
	Client   *http.Client  // nil: one connection of its own
}

// TaskRun is what Run measured.
type TaskRun struct {
	Keys    []string      // in the order of the starts
	Elapsed time.Duration // from the first start request to the last completion seen
}

// Run sends each start request (a path with its query, such as
// /api/start-image?source=SATA1&targetFolder=...), calls started with the keys once all have
// started (nil: nothing), and polls until every task has completed. A task that ends failed or
// stopped is an error carrying its check-task answer.
func (t Tasks) Run(ctx context.Context, starts []string, started func(keys []string)) (TaskRun, error) {
	if t.API == "" || t.Interval <= 0 || len(starts) == 0 {
		return TaskRun{}, fmt.Errorf("pollers: need an API URL, an interval and at least one start (got %q, %v, %d)", t.API, t.Interval, len(starts))
	}
	c := t.Client
	if c == nil {
		c = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
		defer c.CloseIdleConnections()
	}
	var run TaskRun
	t0 := time.Now()
	for _, s := range starts {
		body, err := get(ctx, c, t.API+s)
		if err != nil {
			return run, fmt.Errorf("start %s: %w", s, err)
		}
		run.Keys = append(run.Keys, strings.TrimSpace(string(body)))
	}
	if started != nil {
		started(run.Keys)
	}
	pending := append([]string(nil), run.Keys...)
	for {
		var still []string
		for _, k := range pending {
			body, err := get(ctx, c, t.API+"/api/check-task?taskKey="+url.QueryEscape(k))
			if err != nil {
				return run, fmt.Errorf("check-task %s: %w", k, err)
			}
			var st struct {
				State string `json:"state"`
			}
			if err := json.Unmarshal(body, &st); err != nil {
				return run, fmt.Errorf("check-task %s: %w", k, err)
			}
			switch st.State {
			case "completed":
				run.Elapsed = time.Since(t0)
			case "failed", "stopped":
				return run, fmt.Errorf("task %s %s: %s", k, st.State, body)
			default:
				still = append(still, k)
			}
		}
		if pending = still; len(pending) == 0 {
			return run, nil
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(t.Interval):
		}
	}
}

// get returns the body of a 200 answer.
func get(ctx context.Context, c *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}
