package hint

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestCeil(t *testing.T) {
	for _, tc := range []struct {
		d, unit time.Duration
		want    int64
	}{
		{-time.Second, time.Millisecond, 0},
		{0, time.Millisecond, 0},
		{1, time.Millisecond, 1},
		{time.Millisecond, time.Millisecond, 1},
		{time.Millisecond + 1, time.Millisecond, 2},
		{2500 * time.Microsecond, time.Millisecond, 3},
		{time.Millisecond, time.Second, 1},
		{1500 * time.Millisecond, time.Second, 2},
		{time.Duration(1<<63 - 1), time.Millisecond, 999_999_999},
	} {
		assert.Equal(t, tc.want, Ceil(tc.d, tc.unit), "Ceil(%v, %v)", tc.d, tc.unit)
	}
	assert.Equal(t, 3*time.Millisecond, CeilMillis(2500*time.Microsecond), "the text agrees with the wire")
}

func TestParseDigits(t *testing.T) {
	for _, v := range []string{"0", "7", "120", "999999999"} {
		n, ok := ParseDigits(v)
		assert.True(t, ok, v)
		want, _ := strconv.ParseInt(v, 10, 64)
		assert.Equal(t, want, n, v)
	}
	for _, v := range []string{"", "-0", "+1", " 1", "1 ", "1.5", "1e3", "1000000000", "0x10", "１"} {
		_, ok := ParseDigits(v)
		assert.False(t, ok, "%q", v)
	}
}

func FuzzParseDigits(f *testing.F) {
	for _, v := range []string{"0", "120", "-0", "999999999", "1000000000", "1.5"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, ok := ParseDigits(v)
		want, err := strconv.ParseUint(v, 10, 64)
		wantOK := err == nil && len(v) <= MaxDigits
		if ok != wantOK || ok && uint64(n) != want {
			t.Fatalf("ParseDigits(%q) = %d, %v; strconv says %d, %v", v, n, ok, want, wantOK)
		}
	})
}
