package load

import (
	"encoding/binary"
	"math/rand/v2"
)

// period is the length of a client's pattern. It is not a power of two,
// so that an echo shifted by a buffer size does not line up with itself.
const period = 256<<10 + 13

// pattern is a client's deterministic bytes: a ChaCha8 stream of period
// bytes (every byte value occurs), different for every client so that
// cross-talk shows, stored twice so that any window of up to period bytes
// is contiguous.
type pattern struct{ b []byte }

func newPattern(seed uint64) *pattern {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, 2*period)
	_, _ = rand.NewChaCha8(key).Read(b[:period])
	copy(b[period:], b[:period])
	return &pattern{b: b}
}

// at returns up to n bytes of the endless stream at offset off: a
// contiguous window, cut at most period bytes long.
func (p *pattern) at(off int64, n int) []byte {
	i := int(off % period)
	return p.b[i : i+min(n, period)]
}

// window returns the n-byte message of exchange seq: a different window of
// the stream for every exchange, so that a reply from an earlier
// connection shows.
func (p *pattern) window(seq, n int) []byte {
	off := int64(seq) * 7919 % period
	if n <= period {
		return p.at(off, n)
	}
	msg := make([]byte, 0, n)
	for len(msg) < n {
		msg = append(msg, p.at(off+int64(len(msg)), n-len(msg))...)
	}
	return msg
}
