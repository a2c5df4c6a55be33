package load

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestHistQuantiles tests that the histogram's percentiles are within its
// precision of the exact ones, and that merging loses nothing.
func TestHistQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var a, b hist
	var all []time.Duration
	for i := range 20000 {
		// Log-uniform from 1 ns to 10 s.
		d := time.Duration(float64(10*time.Second) / math.Exp2(r.Float64()*33))
		all = append(all, d)
		if i%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	slices.Sort(all)
	if a.n != int64(len(all)) || a.min != all[0] || a.max != all[len(all)-1] {
		t.Fatalf("n, min, max = %d, %v, %v; want %d, %v, %v", a.n, a.min, a.max, len(all), all[0], all[len(all)-1])
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[min(len(all)-1, int(q*float64(len(all))+0.5)-1)]
		got := a.quantile(q)
		if diff := float64(got-exact) / float64(exact); diff > 1.0/64 || diff < -1.0/64 {
			t.Errorf("quantile %v = %v, exact %v (off by %.2f%%)", q, got, exact, 100*diff)
		}
	}
	var empty hist
	if empty.quantile(0.5) != 0 {
		t.Error("quantile of nothing is not 0")
	}
}

func TestBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, 1<<63 - 1} {
		i := bucketOf(v)
		if i <= prev && v > 0 {
			t.Errorf("bucketOf(%d) = %d, not above the previous %d", v, i, prev)
		}
		if i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of %d buckets", v, i, numBuckets)
		}
		if mid := uint64(bucketMid(i)); v > 0 && (float64(mid) < float64(v)*0.99 || float64(mid) > float64(v)*1.01) && v >= 128 {
			t.Errorf("bucket %d of %d has middle %d", i, v, mid)
		}
		prev = i
	}
}
