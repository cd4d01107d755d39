package seawall_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seawall-go/seawall"
)

// chainPolicy is a pass-through ChainPolicy that records its entry and
// exit, and which of its methods the pipeline called.
type chainPolicy struct {
	name string
	r    *recorder
}

func (c chainPolicy) Do(ctx context.Context, op func(context.Context) error) error {
	c.r.log = append(c.r.log, "Do:"+c.name)
	return c.DoChain(ctx, seawall.Op(op))
}

func (c chainPolicy) DoChain(ctx context.Context, rest seawall.Chain) error {
	c.r.log = append(c.r.log, c.name+">")
	err := rest.Run(ctx)
	c.r.log = append(c.r.log, "<"+c.name)
	return err
}

func TestPipelinePassesTheRestAsAChain(t *testing.T) {
	var r recorder
	// Chain policies around and inside a plain PolicyFunc: the pipeline
	// calls DoChain where it can, Do (with a closure) where it must.
	p := seawall.Pipeline(chainPolicy{"a", &r}, r.policy("b"), chainPolicy{"c", &r})

	require.NoError(t, p.Do(context.Background(), r.op))
	assert.Equal(t, []string{"a>", "b>", "c>", "op", "<c", "<b", "<a"}, r.log)
}

func TestOpRunsOnlyTheOperation(t *testing.T) {
	ctx := context.WithValue(context.Background(), ctxKey("k"), "v")
	errOp := errors.New("op failed")
	calls := 0
	err := seawall.Op(func(got context.Context) error {
		calls++
		assert.True(t, got == ctx, "op got a different context")
		return errOp
	}).Run(ctx)
	assert.Equal(t, 1, calls)
	assert.True(t, err == errOp, "got %v, want op's error unchanged", err)
}
