package api

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evidenced/evidenced/store"
)

// bursts aggregates failed and refused logins per source address: one audit record per burst
// (failures with less than quiet between them), with counts, so guessing cannot grow the state
// file without bound.
type bursts struct {
	write func(store.AuditRecord)
	quiet time.Duration

	mu   sync.Mutex
	open map[string]*burst // by address
}

type burst struct {
	first, last      time.Time
	checked, refused int
	names            map[string]bool
}

// maxBurstNames bounds the account names one record lists.
const maxBurstNames = 10

func newBursts(write func(store.AuditRecord), quiet time.Duration) *bursts {
	return &bursts{write: write, quiet: quiet, open: map[string]*burst{}}
}

// add counts a failed attempt: checked (a wrong password) or refused by the throttle.
func (b *bursts) add(addr, name string, checked bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bu := b.open[addr]
	now := time.Now()
	if bu == nil {
		bu = &burst{first: now, names: map[string]bool{}}
		b.open[addr] = bu
	}
	bu.last = now
	if checked {
		bu.checked++
	} else {
		bu.refused++
	}
	if name != "" && (len(bu.names) < maxBurstNames || bu.names[name]) {
		bu.names[name] = true
	}
}

// flush writes the bursts that ended (all of them with all set).
func (b *bursts) flush(all bool) {
	now := time.Now()
	var recs []store.AuditRecord
	b.mu.Lock()
	for addr, bu := range b.open {
		if !all && now.Sub(bu.last) < b.quiet {
			continue
		}
		delete(b.open, addr)
		names := make([]string, 0, len(bu.names))
		for n := range bu.names {
			names = append(names, n)
		}
		sort.Strings(names)
		recs = append(recs, store.AuditRecord{Time: bu.first, Addr: addr, Action: "login-failed",
			Params: map[string]string{
				"checked": strconv.Itoa(bu.checked), "refused": strconv.Itoa(bu.refused),
				"accounts": strings.Join(names, " "), "first": bu.first.UTC().Format(time.RFC3339),
				"last": bu.last.UTC().Format(time.RFC3339),
			},
			Result: "401 Unauthorized / 429 Too Many Requests"})
	}
	b.mu.Unlock()
	sort.Slice(recs, func(i, j int) bool { return recs[i].Time.Before(recs[j].Time) })
	for _, r := range recs {
		b.write(r)
	}
}

func (b *bursts) run(ctx context.Context) {
	t := time.NewTicker(max(b.quiet/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			b.flush(true)
			return
		case <-t.C:
			b.flush(false)
		}
	}
}
