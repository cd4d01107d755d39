package storm

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// element is an SVG element, with the text it holds.
type element struct {
	name  string
	attrs map[string]string
	text  string
}

// parseSVG checks that svg is well-formed XML with an <svg> root and
// returns its elements in document order.
func parseSVG(t *testing.T, svg []byte) []element {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var out []element
	var open []int // indices in out of the elements not yet closed
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "well-formed XML")
		switch tok := tok.(type) {
		case xml.StartElement:
			e := element{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			open = append(open, len(out))
			out = append(out, e)
		case xml.EndElement:
			open = open[:len(open)-1]
		case xml.CharData:
			if len(open) > 0 {
				out[open[len(open)-1]].text += string(tok)
			}
		}
	}
	require.NotEmpty(t, out)
	require.Equal(t, "svg", out[0].name, "the root")
	require.Equal(t, "http://www.w3.org/2000/svg", out[0].attrs["xmlns"])
	return out
}

// find returns the elements named name whose class is class ("" for any).
func find(els []element, name, class string) []element {
	var out []element
	for _, e := range els {
		if e.name == name && (class == "" || e.attrs["class"] == class) {
			out = append(out, e)
		}
	}
	return out
}

// texts returns the text of every <text> element.
func texts(els []element) []string {
	var out []string
	for _, e := range find(els, "text", "") {
		out = append(out, e.text)
	}
	return out
}

// ys returns the y coordinates of a polyline's points or of a path's
// "M x,y x,y …" data, in order.
func ys(t *testing.T, e element) []string {
	t.Helper()
	pts := e.attrs["points"]
	if e.name == "path" {
		pts = strings.TrimPrefix(e.attrs["d"], "M")
	}
	var out []string
	for _, p := range strings.Fields(pts) {
		_, y, ok := strings.Cut(p, ",")
		require.True(t, ok, "point %q", p)
		out = append(out, y)
	}
	return out
}

// fakeResult returns a result of strategy st over the whole of s, each bin
// of which f fills.
func fakeResult(s Scenario, st Strategy, f func(i int) Bin) *Result {
	bins := make([]Bin, s.Length/BinWidth)
	for i := range bins {
		bins[i] = f(i)
	}
	return &Result{Strategy: st, Timeline: bins}
}

// chartScenario is the default scenario with callers and a seed that are
// not the defaults, so that the title must take them from the scenario.
func chartScenario() Scenario {
	s := Default()
	s.Callers, s.Seed = 3, 42
	return s
}

// fakeResults are (a), (b), (c) and (f) with made-up timelines: (b) and
// (c) alike, as in the default scenario; every window of (a) 100%
// successful but the fourth, at exactly RecoverySuccess (19 of 20), and
// 1000 attempts/s (the capacity) reaching its service in every window but
// the fifth, at 500/s; 4000/s for (b) and (c); 700/s for (f).
func fakeResults(s Scenario) []*Result {
	per := int(RecoveryWindow / BinWidth)
	a := fakeResult(s, NoRetry, func(i int) Bin {
		b := Bin{Requests: 4, Successes: 4, Attempts: 100}
		if i == 3*per {
			b.Successes = 3
		}
		if i/per == 4 {
			b.Attempts = 50
		}
		return b
	})
	flood := func(int) Bin { return Bin{Requests: 4, Successes: 1, Attempts: 400} }
	return []*Result{
		a,
		fakeResult(s, Naive, flood),
		fakeResult(s, Backoff, flood),
		fakeResult(s, ServerSide, func(int) Bin { return Bin{Requests: 7, Successes: 7, Attempts: 70} }),
	}
}

func render(t *testing.T, s Scenario, results []*Result) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, SVG(&buf, s, results))
	return buf.Bytes()
}

// TestSVG checks the chart's pieces: a self-contained SVG; a success line
// per strategy, (b)'s dashed and drawn after (c)'s, which it coincides
// with; the labelled axes; the recovery threshold at RecoverySuccess; the
// attempts panel with the capacity line at the capacity; a legend entry per
// strategy; the callers and the seed in the title.
func TestSVG(t *testing.T) {
	s := chartScenario()
	results := fakeResults(s)
	svg := render(t, s, results)
	els := parseSVG(t, svg)

	for _, e := range els {
		assert.NotContains(t, []string{"image", "use", "style", "script", "foreignObject"}, e.name, "no external resources")
		assert.NotContains(t, e.attrs, "href", "no external resources")
	}
	assert.Equal(t, 1, strings.Count(string(svg), "http"), "no address but the namespace's")

	success := find(els, "polyline", "success")
	require.Len(t, success, len(results), "a success line per strategy")
	order := map[string]int{}
	for i, e := range success {
		order[e.attrs["stroke"]] = i
	}
	require.Len(t, order, len(results), "a colour per strategy")
	b, c := order[colors[Naive]], order[colors[Backoff]]
	assert.NotEmpty(t, success[b].attrs["stroke-dasharray"], "(b) dashed")
	assert.Empty(t, success[c].attrs["stroke-dasharray"], "(c) solid")
	assert.Greater(t, b, c, "(b) drawn over (c)")
	assert.Equal(t, ys(t, success[b]), ys(t, success[c]), "(b) and (c) coincide here")

	all := texts(els)
	assert.Contains(t, all, "success rate of the requests sent", "the y axis is labelled")
	assert.Contains(t, all, "attempts/s reaching the service", "the attempts' y axis is labelled")
	assert.Contains(t, strings.Join(all, "\n"), "counted at the time their request was sent")
	title := all[0]
	assert.Contains(t, title, "3 callers")
	assert.Contains(t, title, "seed 42")
	assert.Contains(t, title, "700 req/s")
	assert.Contains(t, title, "capacity 1000/s")
	assert.Contains(t, title, "load ×2 from 10s to 15s")
	for _, r := range results {
		assert.Contains(t, all, r.Strategy.String(), "in the legend")
	}

	// The threshold: a line across the panel at the height of (a)'s
	// fourth window, which is at exactly RecoverySuccess, and its label.
	threshold := find(els, "line", "threshold")
	require.Len(t, threshold, 1)
	th := threshold[0].attrs
	assert.Equal(t, th["y1"], th["y2"], "horizontal")
	assert.Equal(t, ys(t, success[order[colors[NoRetry]]])[3], th["y1"], "at RecoverySuccess")
	assert.Contains(t, all, "95% success: the recovery threshold")

	// The capacity: a line at the height of (a)'s attempts, 1000/s but in
	// its fifth window, and its label.
	attempts := find(els, "path", "attempts")
	require.Len(t, attempts, len(results), "an attempts line per strategy")
	capacity := find(els, "path", "capacity")
	require.Len(t, capacity, 1)
	var aAttempts []string
	for _, e := range attempts {
		if e.attrs["stroke"] == colors[NoRetry] {
			aAttempts = ys(t, e)
		}
	}
	require.Len(t, aAttempts, int(s.Length/RecoveryWindow), "a point per window")
	d := strings.Fields(capacity[0].attrs["d"])
	require.Len(t, d, 2, "M x,y H(end of the run): no change of capacity in a spike: %q", capacity[0].attrs["d"])
	_, capY, _ := strings.Cut(d[0], ",")
	assert.Equal(t, aAttempts[0], capY, "at the capacity")
	assert.NotEqual(t, aAttempts[4], capY, "500/s is below it")
	assert.Contains(t, all, "service capacity 1000/s")
	assert.Contains(t, all, "spike: 1400 req/s", "the trigger's label")
}

// TestSVGSlowdown checks the capacity line of a slowdown: lowered to
// Capacity()/Factor in the trigger window, and labelled there.
func TestSVGSlowdown(t *testing.T) {
	s := chartScenario()
	s.Trigger = Slowdown
	els := parseSVG(t, render(t, s, fakeResults(s)))
	capacity := find(els, "path", "capacity")
	require.Len(t, capacity, 1)
	d := strings.Fields(capacity[0].attrs["d"])
	// M x,y H(trigger) V(low) H(end) V(back up) H(end of the run)
	require.Len(t, d, 6, "%q", capacity[0].attrs["d"])
	var aAttempts []string
	for _, e := range find(els, "path", "attempts") {
		if e.attrs["stroke"] == colors[NoRetry] {
			aAttempts = ys(t, e)
		}
	}
	require.NotEmpty(t, aAttempts)
	_, normal, _ := strings.Cut(d[0], ",")
	assert.Equal(t, aAttempts[0], normal, "1000/s outside the window")
	assert.Equal(t, "V"+aAttempts[4], d[2], "500/s, Capacity()/Factor, in the window")
	assert.Equal(t, "V"+normal, d[4], "back to the capacity after it")
	all := texts(els)
	assert.Contains(t, all, "capacity 500/s")
	assert.Contains(t, all, "slowdown: capacity 500/s")
	assert.Contains(t, all[0], "capacity ÷2 from 10s to 15s")
}

// TestSVGStrategies checks the style tables: a colour of its own for each
// strategy up to (g) and NumStrategies, and a chart without panic, with a
// line each, for strategies past the tables' end or negative.
func TestSVGStrategies(t *testing.T) {
	seen := map[string]Strategy{}
	for st := range max(NumStrategies, 7) {
		c := styleAt(colors, st)
		require.NotEmpty(t, c, "a colour for %v", st)
		prev, dup := seen[c]
		assert.False(t, dup, "%v and %v share %s", prev, st, c)
		seen[c] = st
	}
	assert.Equal(t, "#9467bd", styleAt(colors, 6), "(g)")

	s := chartScenario()
	odd := []Strategy{6, NumStrategies, NumStrategies + 5, -1}
	var results []*Result
	for _, st := range odd {
		results = append(results, fakeResult(s, st, func(int) Bin { return Bin{Requests: 1, Successes: 1, Attempts: 1} }))
	}
	els := parseSVG(t, render(t, s, results))
	assert.Len(t, find(els, "polyline", "success"), len(odd))
	assert.Len(t, find(els, "path", "attempts"), len(odd))
	all := texts(els)
	for _, st := range odd {
		assert.Contains(t, all, st.String(), "in the legend")
	}
	assert.Equal(t, "#000000", find(els, "polyline", "success")[3].attrs["stroke"], "a strategy past the table: black")
}

// TestSVGEmptyWindows checks that a window without requests has no success
// point (a rate of nothing) but an attempts point, below the others (at 0).
func TestSVGEmptyWindows(t *testing.T) {
	s := chartScenario()
	per := int(RecoveryWindow / BinWidth)
	r := fakeResult(s, NoRetry, func(i int) Bin {
		if i/per == 2 {
			return Bin{}
		}
		return Bin{Requests: 2, Successes: 2, Attempts: 2}
	})
	els := parseSVG(t, render(t, s, []*Result{r}))
	windows := int(s.Length / RecoveryWindow)
	assert.Len(t, ys(t, find(els, "polyline", "success")[0]), windows-1)
	att := ys(t, find(els, "path", "attempts")[0])
	require.Len(t, att, windows)
	y := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err)
		return v
	}
	assert.Greater(t, y(att[2]), y(att[1]), "SVG's y grows downwards")
	assert.Equal(t, att[1], att[3])
}
