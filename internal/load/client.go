package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/reply"
)

// client is one of the concurrent clients of a run.
type client struct {
	r    *run
	id   int
	pat  *pattern
	buf  []byte // reply buffer
	hist hist
}

func newClient(r *run, id int) *client {
	return &client{r: r, id: id, pat: newPattern(uint64(id) + 1)}
}

func (cl *client) deadline() time.Time { return time.Now().Add(cl.r.cfg.Timeout) }

// dial connects within the timeout.
func (cl *client) dial() (*net.TCPConn, error) {
	d := net.Dialer{Timeout: cl.r.cfg.Timeout}
	c, err := d.DialContext(cl.r.ctx, "tcp", cl.r.cfg.Addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// exchanges runs exchanges one after another until the run halts.
func (cl *client) exchanges() error {
	r := cl.r
	// Paced: client i starts exchange k at t0 + (i/clients + k) × period.
	var period time.Duration
	next := time.Now()
	if r.cfg.Rate > 0 {
		period = time.Duration(float64(r.cfg.Clients) / r.cfg.Rate * 1e9)
		next = next.Add(period * time.Duration(cl.id) / time.Duration(r.cfg.Clients))
	}
	pace := time.NewTimer(time.Hour)
	pace.Stop()
	defer pace.Stop()
	for seq := 0; ; seq++ {
		behind := false
		if period > 0 {
			if d := time.Until(next); d <= 0 {
				behind = true // the last exchange ran past this one's start
			} else {
				pace.Reset(d)
				select {
				case <-pace.C:
				case <-r.stop:
					return nil
				}
			}
		}
		if r.halted.Load() {
			return nil
		}
		measured := r.measuring.Load()
		if measured && r.cfg.Count > 0 && r.tickets.Add(1) > r.cfg.Count {
			return nil
		}
		start := time.Now()
		if period > 0 {
			if behind {
				// The server kept this exchange waiting: its latency counts
				// from when it was due (no coordinated omission). A timer
				// that fires late is this process's delay, not the server's.
				start = next
			}
			next = next.Add(period)
		}
		if err := cl.exchange(seq); err != nil {
			if r.halted.Load() && errors.Is(err, context.Canceled) {
				return nil // a dial cut short by the end of the run
			}
			return fmt.Errorf("exchange %d: %w", seq, err)
		}
		if !measured || r.halted.Load() {
			continue
		}
		cl.hist.record(time.Since(start))
		r.bytes.Add(r.cfg.Bytes)
		if n := r.done.Add(1); r.cfg.Count > 0 && n >= r.cfg.Count {
			r.halt()
		}
	}
}

// exchange is one connection: connect, send the message, half-close, read
// the reply to EOF and verify it.
func (cl *client) exchange(seq int) error {
	cfg := cl.r.cfg
	msg := cl.pat.window(seq, int(cfg.Bytes))
	c, err := cl.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	halfClose := !cfg.NoHalfClose
	var werr chan error
	if len(msg) <= 64<<10 {
		// Fits the socket buffers: written before anything is read.
		if err := writeAll(c, msg, cl.r.cfg.Timeout, halfClose); err != nil {
			return err
		}
	} else {
		werr = make(chan error, 1)
		go func() { werr <- writeAll(c, msg, cl.r.cfg.Timeout, halfClose) }()
	}
	got, rerr := cl.readToEOF(c, len(msg)+4096)
	if werr != nil {
		if rerr != nil {
			c.Close() // unblocks the writer
		}
		if err := <-werr; err != nil && rerr == nil {
			return err
		}
	}
	if rerr != nil {
		return fmt.Errorf("%w (after %d bytes of the reply)", rerr, len(got))
	}
	_, err = reply.Verify(cfg.Prefix, got, msg)
	return err
}

// writeAll writes b with a deadline per write and half-closes if asked.
func writeAll(c *net.TCPConn, b []byte, timeout time.Duration, halfClose bool) error {
	for len(b) > 0 {
		if err := c.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		n, err := c.Write(b[:min(len(b), 1<<20)])
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		b = b[n:]
	}
	if halfClose {
		if err := c.CloseWrite(); err != nil {
			return fmt.Errorf("half-close: %w", err)
		}
	}
	return nil
}

// readToEOF reads until EOF, at most limit bytes, with a deadline per read.
func (cl *client) readToEOF(c *net.TCPConn, limit int) ([]byte, error) {
	if cap(cl.buf) < limit+1 {
		cl.buf = make([]byte, limit+1)
	}
	buf := cl.buf[:limit+1]
	n := 0
	for {
		if err := c.SetReadDeadline(cl.deadline()); err != nil {
			return buf[:n], err
		}
		k, err := c.Read(buf[n:])
		n += k
		if err == io.EOF {
			return buf[:n], nil
		}
		if err != nil {
			return buf[:n], fmt.Errorf("read: %w", err)
		}
		if n > limit {
			return buf[:n], fmt.Errorf("reply longer than %d bytes without EOF", limit)
		}
	}
}

// stream streams through one connection until the client has sent Bytes
// or the run halts, half-closes, and reads the echo to EOF, verifying it as
// it arrives.
func (cl *client) stream() error {
	r := cl.r
	cfg := r.cfg
	c, err := cl.dial()
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()

	q := &sendQueue{}
	werr := make(chan error, 1)
	go func() { werr <- cl.writeStream(c, q) }()
	rerr := cl.readStream(c, q)
	if rerr != nil {
		c.Close() // unblocks the writer
	}
	err = <-werr
	switch {
	case rerr != nil:
		return rerr
	case err != nil:
		return err
	}
	if got, sent := q.received(), q.total(); got != sent {
		return fmt.Errorf("EOF after %d bytes of the echo, %d sent", got, sent)
	}
	if r.measuring.Load() && !r.halted.Load() && cfg.Bytes > 0 {
		r.done.Add(1)
	}
	return nil
}

// writeStream writes the pattern until Bytes are sent or the run halts,
// recording when each write went out, then half-closes.
func (cl *client) writeStream(c *net.TCPConn, q *sendQueue) error {
	cfg := cl.r.cfg
	var off int64
	for cfg.Bytes == 0 || off < cfg.Bytes {
		if cl.r.halted.Load() {
			break
		}
		n := int64(cfg.Chunk)
		if cfg.Bytes > 0 {
			n = min(n, cfg.Bytes-off)
		}
		b := cl.pat.at(off, int(n))
		if err := c.SetWriteDeadline(cl.deadline()); err != nil {
			return err
		}
		q.push(off+int64(len(b)), time.Now())
		k, err := c.Write(b)
		off += int64(k)
		q.setTotal(off, false)
		if err != nil {
			return fmt.Errorf("write after %d bytes: %w", off, err)
		}
	}
	q.setTotal(off, true)
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("half-close: %w", err)
	}
	return nil
}

// readStream reads the prefix and then the echo until EOF, comparing every
// byte with what was sent.
func (cl *client) readStream(c *net.TCPConn, q *sendQueue) error {
	r := cl.r
	buf := make([]byte, 256<<10)
	var pending []byte // bytes read before the prefix was complete
	prefixDone := false
	var got int64
	for {
		if err := c.SetReadDeadline(cl.deadline()); err != nil {
			return err
		}
		k, err := c.Read(buf)
		data := buf[:k]
		if !prefixDone && k > 0 {
			pending = append(pending, data...)
			_, n, perr := r.cfg.Prefix.Match(pending)
			if perr == nil {
				prefixDone, data, pending = true, pending[n:], nil
			} else if !errors.Is(perr, echo.ErrShort) {
				return fmt.Errorf("the reply does not start with the prefix %q: %w (got %s)", r.cfg.Prefix, perr, reply.Show(pending))
			} else {
				data = nil
			}
		}
		if len(data) > 0 {
			want := cl.pat.at(got, len(data))
			if q.final() {
				if sent := q.total(); got+int64(len(want)) > sent {
					want = want[:max(0, sent-got)]
				}
			}
			if err := reply.ComparePart(got, data, want); err != nil {
				return err
			}
			got += int64(len(data))
			q.ack(got, r.measuring.Load() && !r.halted.Load(), &cl.hist)
			r.bytes.Add(int64(len(data)))
		}
		if err == io.EOF {
			if !prefixDone && len(pending) > 0 {
				return fmt.Errorf("the reply ends inside the prefix %q: got %s", r.cfg.Prefix, reply.Show(pending))
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read after %d bytes of the echo: %w", got, err)
		}
	}
}

// sendQueue tells the reader of a stream what the writer sent and when:
// the latency of a write is the time until its last byte came back.
type sendQueue struct {
	mu     sync.Mutex
	ends   []int64 // end offsets of writes not yet echoed, in order
	times  []time.Time
	head   int
	sent   int64
	done   bool
	echoed int64
}

func (q *sendQueue) push(end int64, t time.Time) {
	q.mu.Lock()
	if q.head > 1024 && q.head*2 > len(q.ends) {
		q.ends = append(q.ends[:0], q.ends[q.head:]...)
		q.times = append(q.times[:0], q.times[q.head:]...)
		q.head = 0
	}
	q.ends = append(q.ends, end)
	q.times = append(q.times, t)
	q.mu.Unlock()
}

func (q *sendQueue) setTotal(n int64, done bool) {
	q.mu.Lock()
	q.sent, q.done = n, done
	q.mu.Unlock()
}

func (q *sendQueue) total() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.sent
}

func (q *sendQueue) final() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.done
}

func (q *sendQueue) received() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.echoed
}

// ack records that got bytes came back, and the latency of every write
// they complete when record is set.
func (q *sendQueue) ack(got int64, record bool, h *hist) {
	now := time.Now()
	q.mu.Lock()
	q.echoed = got
	for q.head < len(q.ends) && q.ends[q.head] <= got {
		if record {
			h.record(now.Sub(q.times[q.head]))
		}
		q.head++
	}
	q.mu.Unlock()
}
