package hal

import (
	"context"
	"sync"
	"time"
)

// SubscriberBuffer is how many events a subscriber may lag behind before it loses events.
const SubscriberBuffer = 64

// Fanout delivers a board's hot-plug events to its subscribers, as Board.Subscribe promises: each
// subscriber has its own buffer, a full one loses events (Dropped is told), and the board never
// waits for a consumer. The zero value is ready to use.
type Fanout struct {
	Dropped func(Event) // called for an event a slow subscriber lost; may be nil

	mu     sync.Mutex
	subs   map[chan Event]struct{}
	closed bool
}

// Subscribe returns a channel of events that closes when ctx ends or the Fanout is closed.
func (f *Fanout) Subscribe(ctx context.Context) <-chan Event {
	ch := make(chan Event, SubscriberBuffer)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || ctx.Err() != nil {
		close(ch)
		return ch
	}
	if f.subs == nil {
		f.subs = map[chan Event]struct{}{}
	}
	f.subs[ch] = struct{}{}
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[ch]; ok {
			delete(f.subs, ch)
			close(ch)
		}
	})
	return ch
}

// Emit sends an event to every subscriber without waiting.
func (f *Fanout) Emit(port string, kind EventKind) {
	ev := Event{Port: port, Kind: kind, Time: time.Now()}
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- ev:
		default:
			if f.Dropped != nil {
				f.Dropped(ev)
			}
		}
	}
}

// Close ends every subscription; later subscriptions are closed at once. Closing twice is harmless.
func (f *Fanout) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for ch := range f.subs {
		delete(f.subs, ch)
		close(ch)
	}
}
