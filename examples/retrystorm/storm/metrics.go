package storm

import (
	"slices"
	"time"
)

// BinWidth is the width of a [Bin] of the timeline.
const BinWidth = 100 * time.Millisecond

// RecoveryWindow and RecoverySuccess define recovery: the strategy has
// recovered once the requests sent in every RecoveryWindow-long window
// that follows (windows slide by BinWidth) succeed at a rate of at least
// RecoverySuccess.
const (
	RecoveryWindow  = 500 * time.Millisecond
	RecoverySuccess = 0.95
)

// Never is the Recovery of a strategy that had not recovered by the end.
const Never = time.Duration(-1)

// NoRecovery is the Recovery of a scenario whose base load is not below
// the service's capacity: no strategy can recover, as there is nothing to
// recover to.
const NoRecovery = time.Duration(-2)

// A Bin is the fate of the requests sent in one BinWidth of the run.
type Bin struct {
	Requests  int `json:"requests"`
	Successes int `json:"successes"`
	Attempts  int `json:"attempts"` // that reached the service
}

// Metrics are a strategy's numbers, in scenario time. A request belongs to
// the window in which it was sent.
type Metrics struct {
	Requests int     `json:"requests"`
	Success  float64 `json:"success"` // share of requests that succeeded

	// AmpTrigger and AmpAfter are the amplification: attempts that reached
	// the service ÷ requests, for the requests sent during the trigger
	// window and after it.
	AmpTrigger float64 `json:"ampTrigger"`
	AmpAfter   float64 `json:"ampAfter"`

	// Goodput is the successful requests per second among those sent
	// during the trigger window; GoodputShare is that over what is
	// achievable ([Scenario.Achievable]): the service's capacity during
	// the window or the load offered, whichever is less.
	Goodput      float64 `json:"goodput"`
	GoodputShare float64 `json:"goodputShare"`

	// WarmupSuccess is the success rate of the requests sent before the
	// trigger.
	WarmupSuccess float64 `json:"warmupSuccess"`

	// P99 is the 99th percentile of the latency of the successful requests
	// sent during the trigger window (0 if none succeeded); P99All that of
	// all successful requests.
	P99    time.Duration `json:"p99"`
	P99All time.Duration `json:"p99All"`

	// Wasted is the share of the service's busy time spent on requests
	// whose caller had given up by the time the service finished them.
	Wasted float64 `json:"wasted"`

	// Recovery is the time from the end of the trigger window until every
	// later window of RecoveryWindow has a success rate of at least
	// RecoverySuccess; Never if the last one has not; NoRecovery if the
	// base load is not below capacity.
	Recovery time.Duration `json:"recovery"`

	// LastSuccess is the success rate of the requests sent in the last 5s.
	LastSuccess float64 `json:"lastSuccess"`
}

// timeline bins the records by the time they were sent.
func (s Scenario) timeline(recs []Record) []Bin {
	bins := make([]Bin, (s.Length+BinWidth-1)/BinWidth)
	for _, r := range recs {
		i := min(int(r.Sent/BinWidth), len(bins)-1)
		bins[i].Requests++
		bins[i].Attempts += r.Attempts
		if r.OK {
			bins[i].Successes++
		}
	}
	return bins
}

func (s Scenario) metrics(res *Result) Metrics {
	m := Metrics{Requests: len(res.Records)}
	at, end := s.TriggerAt, s.TriggerEnd()
	var ok, trigReqs, trigAtt, afterReqs, afterAtt, trigOK, lastReqs, lastOK, warmReqs, warmOK int
	var lat, latAll []time.Duration
	for _, r := range res.Records {
		if r.OK {
			ok++
			latAll = append(latAll, r.Latency)
		}
		switch {
		case r.Sent < at:
			warmReqs++
			if r.OK {
				warmOK++
			}
		case r.Sent >= at && r.Sent < end:
			trigReqs++
			trigAtt += r.Attempts
			if r.OK {
				trigOK++
				lat = append(lat, r.Latency)
			}
		case r.Sent >= end:
			afterReqs++
			afterAtt += r.Attempts
		}
		if r.Sent >= s.Length-5*time.Second {
			lastReqs++
			if r.OK {
				lastOK++
			}
		}
	}
	m.Success = ratio(ok, m.Requests)
	m.AmpTrigger = ratio(trigAtt, trigReqs)
	m.AmpAfter = ratio(afterAtt, afterReqs)
	if s.TriggerFor > 0 {
		m.Goodput = float64(trigOK) / s.TriggerFor.Seconds()
		m.GoodputShare = m.Goodput / s.Achievable()
	}
	m.WarmupSuccess = ratio(warmOK, warmReqs)
	m.P99 = percentile(lat, 0.99)
	m.P99All = percentile(latAll, 0.99)
	if res.Service.Busy > 0 {
		m.Wasted = float64(res.Service.Wasted) / float64(res.Service.Busy)
	}
	m.LastSuccess = ratio(lastOK, lastReqs)
	m.Recovery = s.recovery(res.Timeline)
	if s.Rate >= s.Capacity() {
		m.Recovery = NoRecovery
	}
	return m
}

// recovery returns the time from the end of the trigger until every later
// window of RecoveryWindow has a success rate of at least RecoverySuccess.
func (s Scenario) recovery(bins []Bin) time.Duration {
	first := int(s.TriggerEnd() / BinWidth)
	n := int(RecoveryWindow / BinWidth)
	last := int(s.Length/BinWidth) - n // the last window that fits
	rec := first
	for i := first; i <= last; i++ {
		var req, succ int
		for _, b := range bins[i : i+n] {
			req += b.Requests
			succ += b.Successes
		}
		if req > 0 && float64(succ) < RecoverySuccess*float64(req) {
			rec = i + 1
		}
	}
	if rec > last && last >= first {
		return Never
	}
	return time.Duration(rec-first) * BinWidth
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// percentile returns the p-quantile of d (nearest rank), 0 if d is empty.
// It sorts d.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(p*float64(len(d))+0.999999) - 1
	return d[min(max(i, 0), len(d)-1)]
}
