package tasks

import (
	"context"
	"sync"
)

// feedBuffer is how many changed task keys a subscriber may fall behind before it loses some.
const feedBuffer = 64

// feed fans task changes out to subscribers (the dashboard's event stream). A slow subscriber
// loses changes; the manager never waits for one.
type feed struct {
	mu   sync.Mutex
	subs map[chan string]struct{}
}

// Subscribe delivers the key of every task whose record changes (started, a step, a checkpoint,
// the end) until ctx ends; then the channel is closed. Live byte counts are not changes: read them
// with Live.
func (m *Manager) Subscribe(ctx context.Context) <-chan string {
	f := &m.feed
	ch := make(chan string, feedBuffer)
	f.mu.Lock()
	defer f.mu.Unlock()
	if ctx.Err() != nil {
		close(ch)
		return ch
	}
	if f.subs == nil {
		f.subs = map[chan string]struct{}{}
	}
	f.subs[ch] = struct{}{}
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, ch)
		close(ch)
	})
	return ch
}

// changed tells subscribers that task key changed.
func (m *Manager) changed(key string) {
	f := &m.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- key:
		default:
		}
	}
}

// Running lists the keys of the tasks running now.
func (m *Manager) Running() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.running))
	for k := range m.running {
		out = append(out, k)
	}
	return out
}
