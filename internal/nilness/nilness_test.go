package nilness

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

type limiter struct{}

func (*limiter) Allow() bool { return true }

func TestIs(t *testing.T) {
	var a interface{ Allow() bool }
	assert.True(t, Is(a))
	assert.True(t, Is(nil))
	a = (*limiter)(nil)
	assert.True(t, Is(a), "a nil pointer in an interface")
	a = &limiter{}
	assert.False(t, Is(a))
	assert.False(t, Is(3))
	assert.True(t, Is((func())(nil)))
}
