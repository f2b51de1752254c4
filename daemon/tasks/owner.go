package tasks

import "context"

type ownerKey struct{}

type owner struct {
	name   string
	shared bool
}

// WithOwner names the user starting a task (and whether every examiner may see and stop it);
// the task record keeps both.
func WithOwner(ctx context.Context, name string, shared bool) context.Context {
	return context.WithValue(ctx, ownerKey{}, owner{name, shared})
}

func ownerOf(ctx context.Context) owner {
	o, _ := ctx.Value(ownerKey{}).(owner)
	return o
}
