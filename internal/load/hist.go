package load

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: 2^subBits buckets per power of
// two, so a percentile is off by less than 1/128 of its value.
const subBits = 7

// numBuckets covers every duration up to 2^63 ns.
const numBuckets = (64 - subBits) << subBits

// hist is a log-linear histogram of durations (HDR style): a fixed size,
// no allocation per sample, mergeable. One per client, merged at the end.
type hist struct {
	counts   [numBuckets]uint32
	n        int64
	min, max time.Duration
}

func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1
	return (e+1)<<subBits | int(v>>e&(1<<subBits-1))
}

// bucketMid is the middle of bucket i's range of values.
func bucketMid(i int) time.Duration {
	if i < 1<<subBits {
		return time.Duration(i)
	}
	e := i>>subBits - 1
	lo := (uint64(1)<<subBits | uint64(i&(1<<subBits-1))) << e
	return time.Duration(lo + (uint64(1)<<e)/2)
}

func (h *hist) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
}

func (h *hist) merge(o *hist) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q ≤ 1) of the recorded durations,
// clamped to the exact minimum and maximum.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen int64
	for i, c := range h.counts {
		seen += int64(c)
		if seen >= rank {
			return min(max(bucketMid(i), h.min), h.max)
		}
	}
	return h.max
}
