package driver

import (
	"context"
	"sync"
)

// A memo lets the interfaces asked within one operation share an answer that is costly to get and must not
// change in between: autodetect asks bootc and then direct whether they deploy a node's image, and both would
// otherwise ask the registry the same question (two round trips, and two answers if a tag moved in between).
// It lives in the operation's context only, never on the node, and is gone with the context.

type memoKey struct{}

type memo struct {
	mu sync.Mutex
	m  map[string]memoEntry
}

type memoEntry struct {
	v   any
	err error
}

// WithMemo returns ctx with an empty memo for the calls of one operation. A context that has one keeps it.
func WithMemo(ctx context.Context) context.Context {
	if _, ok := ctx.Value(memoKey{}).(*memo); ok {
		return ctx
	}
	return context.WithValue(ctx, memoKey{}, &memo{m: map[string]memoEntry{}})
}

// Memoize returns fn's result for key, calling fn only the first time key is asked within ctx's memo; without a
// memo it just calls fn. Errors are remembered too: a registry that refused once refuses for the whole operation.
// Calls for the same key are serialised (the second waits for the first), which is what a detection wants.
func Memoize(ctx context.Context, key string, fn func() (any, error)) (any, error) {
	mm, ok := ctx.Value(memoKey{}).(*memo)
	if !ok {
		return fn()
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if e, ok := mm.m[key]; ok {
		return e.v, e.err
	}
	v, err := fn()
	mm.m[key] = memoEntry{v: v, err: err}
	return v, err
}
