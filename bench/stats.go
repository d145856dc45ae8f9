package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted: the smallest value with at least p% of the values at or below
// it. It returns 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p/100*float64(n) - 1e-9)) // 1e-9: 99.9% of 1000 is 999, not 999.0000000000001

	return sorted[min(max(rank, 1), n)-1]
}

// Latency summarises one set of request latencies.
type Latency struct {
	Count int     `json:"count"`
	MeanU float64 `json:"mean_us"`
	P50U  float64 `json:"p50_us"`
	P90U  float64 `json:"p90_us"`
	P99U  float64 `json:"p99_us"`
	P999U float64 `json:"p99_9_us"`
	MaxU  float64 `json:"max_us"`
}

// Summarize sorts lat in place and summarises it (in microseconds).
func Summarize(lat []time.Duration) Latency {
	slices.Sort(lat)
	s := Latency{Count: len(lat)}
	if len(lat) == 0 {
		return s
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	s.MeanU = us(sum / time.Duration(len(lat)))
	s.P50U = us(Percentile(lat, 50))
	s.P90U = us(Percentile(lat, 90))
	s.P99U = us(Percentile(lat, 99))
	s.P999U = us(Percentile(lat, 99.9))
	s.MaxU = us(lat[len(lat)-1])
	return s
}

func us(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)*10) / 10 }

// Ratio is a/b, or 0 when b is 0 (rounded to 3 decimals).
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(a/b*1000) / 1000
}
