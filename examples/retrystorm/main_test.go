package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

// The scenario itself is tested, in virtual time, in package storm; run
// runs it on the real clock, so only its refusals are tested here.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-strategies", "x"},
		{"-format", "xml"},
		{"-trigger", "flood"},
		{"-factor", "0"},
		{"-callers", "0"},
		{"-speed", "0"},
		{"-warmup", "40s"},
		{"-no-such-flag"},
	} {
		var out, errs bytes.Buffer
		assert.Error(t, run(args, &out, &errs), "%v", args)
		assert.Empty(t, out.String(), "%v: nothing runs", args)
	}
}

func TestRunHelp(t *testing.T) {
	var out, errs bytes.Buffer
	assert.NoError(t, run([]string{"-h"}, &out, &errs), "-h is not an error")
	assert.Empty(t, out.String(), "nothing runs")
	assert.Contains(t, errs.String(), "-strategies", "the usage lists the flags")
}
