package driver

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestMemoize: within one memo a key is computed once (errors included); without a memo every call computes;
// WithMemo keeps an existing memo.
func TestMemoize(t *testing.T) {
	calls := 0
	fn := func() (any, error) { calls++; return calls, nil }
	bg := context.Background()
	for i := 0; i < 2; i++ {
		_, _ = Memoize(bg, "k", fn)
	}
	assert.Equal(t, 2, calls, "no memo: every call computes")

	ctx := WithMemo(bg)
	v1, _ := Memoize(ctx, "k", fn)
	v2, _ := Memoize(WithMemo(ctx), "k", fn)
	assert.Equal(t, v1, v2)
	assert.Equal(t, 3, calls)

	boom := errors.New("registry refused")
	_, err := Memoize(ctx, "bad", func() (any, error) { calls++; return nil, boom })
	_, err2 := Memoize(ctx, "bad", func() (any, error) { calls++; return nil, nil })
	assert.ErrorIs(t, err, boom)
	assert.ErrorIs(t, err2, boom)
	assert.Equal(t, 4, calls)
}
