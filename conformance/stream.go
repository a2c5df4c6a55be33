package conformance

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"pgregory.net/rapid"

	"github.com/echoconform/echoconform/echo"
)

func init() {
	register("STREAM-1", check{applies: onlyStream, run: testStreamModel})
	register("STREAM-2", check{applies: onlyStream, run: testStreamInteractive})
	register("STREAM-3", check{applies: onlyStream, run: testStreamHalfClose})
	register("STREAM-4", check{applies: onlyStream, run: testStreamFullDuplex})
}

func onlyStream(ck *checker) string {
	if _, ok := ck.o.proto.(streamProtocol); !ok {
		return "the server speaks " + ck.o.protocol.String()
	}
	return ""
}

// streamProtocol is RFC 862: every byte comes back as it arrives, and the
// client's half-close ends the connection.
type streamProtocol struct{}

// messageSize is n: a stream server reads all there is.
func (streamProtocol) messageSize(n, maxMsg int) int { return n }

func (streamProtocol) endMessage(c *conn) error { return c.halfClose() }

func (streamProtocol) frame(msg []byte) []byte { return msg }

func (streamProtocol) answersEarly() bool { return false }

// judgeTrickled half-closes and expects the whole echo.
func (streamProtocol) judgeTrickled(ck *checker, c *conn, msg []byte) {
	if err := c.halfClose(); err != nil {
		ck.Fatal(err)
	}
	if _, err := ck.expectEcho(c, msg); err != nil {
		ck.Fatalf("the trickling client: %v", err)
	}
}

// judgeCrossTalk interleaves writes on k connections, round robin, each
// its own data, and expects every echo whole.
func (streamProtocol) judgeCrossTalk(ck *checker, k int) {
	es, closeAll := ck.openEchoes(k)
	defer closeAll()
	for round := 0; round < 4; round++ {
		for i, e := range es {
			if err := e.send(seeded(uint64(1000*i+round), 100+1000*round)); err != nil {
				ck.Fatal(err)
			}
		}
	}
	// Wait a while with the connections open, then half-close: a server that
	// holds its echo until EOF, or loses data at a half-close, is other
	// checks' business.
	for _, e := range es {
		_ = e.waitEcho(ck.o.prefix, ck.dl.D/8)
		if err := e.halfClose(); err != nil {
			ck.Fatal(err)
		}
	}
	for _, e := range es {
		if err := e.waitEcho(ck.o.prefix, ck.dl.D); err != nil {
			ck.Fatalf("%d connections at once, interleaved writes: %v", k, err)
		}
	}
}

// payload draws data to send: small payloads byte by byte, so that they
// shrink to the bytes that matter; large ones from a seed, so that
// megabytes cost one draw.
func payload(t *rapid.T, label string, maxSize int) []byte {
	n := rapid.OneOf(rapid.IntRange(0, 64), rapid.IntRange(0, 4096), rapid.IntRange(0, maxSize)).Draw(t, label+" size")
	if n <= 64 {
		return rapid.SliceOfN(rapid.Byte(), n, n).Draw(t, label)
	}
	return seeded(rapid.Uint64().Draw(t, label+" seed"), n)
}

// seeded returns n bytes of deterministic pseudo-random data: every byte
// value appears.
func seeded(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	b := make([]byte, n+7) // whole words, cut to n
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n:n]
}

// echoConn is a connection whose echo is read continuously in the
// background, so that the client never stops the server by not reading.
type echoConn struct {
	*conn
	sent   []byte
	mu     sync.Mutex
	got    []byte
	err    error // io.EOF when the server closed
	done   chan struct{}
	notify chan struct{}
}

func (ck *checker) openEcho() (*echoConn, error) { return ck.openEchoFor(0) }

// openEchoFor is openEcho for a client that expects about n bytes back:
// the echo is read straight into a buffer of that size.
func (ck *checker) openEchoFor(n int) (*echoConn, error) {
	c, err := ck.dial()
	if err != nil {
		return nil, err
	}
	e := &echoConn{conn: c, done: make(chan struct{}), notify: make(chan struct{}, 1),
		got: make([]byte, 0, max(n+echoSlack, minEchoRead))}
	go e.readLoop()
	return e, nil
}

// Reads go straight into the free end of echoConn.got; it grows when less
// than minEchoRead is free. echoSlack is room for a prefix.
const (
	minEchoRead = 64 << 10
	echoSlack   = 512
)

// openEchoes opens k echo connections at once; closeAll closes them and
// waits for their readers. A connection that cannot be opened ends the
// check, the ones opened before it closed.
func (ck *checker) openEchoes(k int) (es []*echoConn, closeAll func()) {
	closeAll = func() {
		for _, e := range es {
			e.close()
			<-e.done
		}
	}
	for range k {
		e, err := ck.openEcho()
		if err != nil {
			closeAll()
			ck.Fatal(err)
		}
		es = append(es, e)
	}
	return es, closeAll
}

func (e *echoConn) readLoop() {
	defer close(e.done)
	_ = e.c.SetReadDeadline(time.Time{})
	// Only this goroutine writes got, and only past its length: the bytes
	// up to it, which snapshot hands out, never change.
	got := e.got
	for {
		if cap(got)-len(got) < minEchoRead {
			got = append(make([]byte, 0, 2*cap(got)+minEchoRead), got...)
		}
		n, err := e.c.Read(got[len(got):cap(got)])
		got = got[:len(got)+n]
		e.mu.Lock()
		e.got = got
		over := len(got) > len(e.sent)+(1<<20)+64
		if err == nil && over {
			err = fmt.Errorf("the server sent over 1 MiB more than it was sent; the harness stopped reading")
		}
		e.err = err
		e.mu.Unlock()
		if n > 0 {
			e.tr.add(e.id, "recv", got[len(got)-n:], n)
		}
		select {
		case e.notify <- struct{}{}:
		default:
		}
		if err != nil {
			if err == io.EOF {
				e.tr.add(e.id, "eof", nil, 0)
			} else if isReset(err) {
				e.tr.add(e.id, "server-reset", nil, 0)
			}
			return
		}
	}
}

// send writes p, which the caller leaves unchanged from then on: the first
// write is kept without a copy.
func (e *echoConn) send(p []byte) error {
	e.mu.Lock()
	if len(e.sent) == 0 {
		e.sent = p[:len(p):len(p)] // a later append copies
	} else {
		e.sent = append(e.sent, p...)
	}
	e.mu.Unlock()
	return e.write(p)
}

func (e *echoConn) snapshot() ([]byte, []byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got[:len(e.got):len(e.got)], e.sent, e.err
}

// waitEcho waits until the whole echo of what was sent has come back (or
// the reply went wrong, or the server closed, or the wait ran out), and
// then checks it. It does not require EOF: that is STREAM-3's business.
func (e *echoConn) waitEcho(t echo.Template, wait time.Duration) error {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		got, sent, rerr := e.snapshot()
		_, n, merr := t.Match(got)
		switch {
		case merr != nil && !errors.Is(merr, echo.ErrShort):
			_, err := e.tr.verify(e.id, t, got, sent)
			return fmt.Errorf("conn %d: %v", e.id, err)
		case merr == nil && len(got)-n >= len(sent):
			if _, err := e.tr.verify(e.id, t, got, sent); err != nil {
				return fmt.Errorf("conn %d: %v", e.id, err)
			}
			return nil
		case rerr != nil:
			_, err := e.tr.verify(e.id, t, got, sent)
			if rerr == io.EOF {
				return fmt.Errorf("conn %d: the server closed the connection early: %v", e.id, err)
			}
			return fmt.Errorf("conn %d: %v (read: %v)", e.id, err, explain(rerr))
		}
		select {
		case <-e.notify:
		case <-timer.C:
			_, err := e.tr.verify(e.id, t, got, sent)
			return fmt.Errorf("conn %d: the echo was incomplete after waiting %v: %v", e.id, wait, err)
		}
	}
}

// settle waits briefly for bytes beyond the echo, which would break
// "exactly once", ending early at EOF.
func (e *echoConn) settle(t echo.Template, wait time.Duration) error {
	select {
	case <-e.done:
	case <-time.After(wait):
	}
	got, sent, _ := e.snapshot()
	if _, err := e.tr.verify(e.id, t, got, sent); err != nil {
		return fmt.Errorf("conn %d: %v", e.id, err)
	}
	return nil
}

// testStreamModel tests that every connection, among several open at once
// and driven by arbitrary writes, half-closes and resets, receives the
// prefix and exactly the bytes it sent (STREAM-1). rapid shrinks a failure
// to the fewest connections, writes and bytes. rapid shrinks only while a
// failure repeats with the same message from the same place, so a failure
// is recorded where it shows and reported once, at the end, from one
// place, with a message that depends on the data, not on timing.
func testStreamModel(ck *checker) {
	streamBoundaries(ck)
	echoModel(ck, func(t *rapid.T) [][]byte { return [][]byte{payload(t, "data", 256<<10)} })
}

// echoModel is the random part of STREAM-1 and LINE-1: up to four
// connections open at once, each driven by the writes draw returns, one
// after another, half-closes and resets. A drained connection must have
// come back whole.
func echoModel(ck *checker, draw func(t *rapid.T) [][]byte) {
	tmpl := ck.o.prefix
	ck.property(func(t *rapid.T) {
		ck.tr.reset()
		var open []*echoConn
		var failure error
		fail := func(err error) {
			if failure == nil {
				failure = err
			}
		}
		defer func() {
			for _, e := range open {
				e.close()
				<-e.done
			}
		}()
		pick := func(t *rapid.T) int {
			if len(open) == 0 {
				t.Skip("no connection open")
			}
			return rapid.IntRange(0, len(open)-1).Draw(t, "conn")
		}
		// drain half-closes connection i and checks its whole echo.
		drain := func(i int) {
			e := open[i]
			open = append(open[:i], open[i+1:]...)
			defer func() { e.close(); <-e.done }()
			if err := e.halfClose(); err != nil {
				fail(err)
				return
			}
			_, sent, _ := e.snapshot()
			if err := e.waitEcho(tmpl, ck.dl.transfer(len(sent))); err == nil {
				err = e.settle(tmpl, ck.dl.settle)
				if err != nil {
					fail(fmt.Errorf("%v (sent %d bytes on it)", err, len(sent)))
				}
				return
			}
			// Wait for the end, and judge what finally came back, as the
			// fixed cases do: STREAM-1 judges the bytes; an echo that is
			// whole but late (a machine too busy to run the server) is
			// STREAM-2's business.
			select {
			case <-e.done:
			case <-time.After(ck.dl.D):
			}
			got, _, _ := e.snapshot()
			if _, verr := e.tr.verify(e.id, tmpl, got, sent); verr != nil {
				fail(fmt.Errorf("conn %d, %d bytes sent in all: %v", e.id, len(sent), verr))
			}
		}
		t.Repeat(map[string]func(*rapid.T){
			"open": func(t *rapid.T) {
				if len(open) >= 4 {
					t.Skip("4 connections open")
				}
				if failure != nil {
					return // the rest of the run changes nothing
				}
				e, err := ck.openEcho()
				if err != nil {
					fail(err)
					return
				}
				open = append(open, e)
			},
			"write": func(t *rapid.T) {
				i := pick(t)
				if failure != nil {
					return
				}
				for _, p := range draw(t) {
					if err := open[i].send(p); err != nil {
						fail(fmt.Errorf("conn %d: writing %d bytes (%d sent in all): %v", open[i].id, len(p), len(open[i].sent), explain(errors.Unwrap(err))))
						return
					}
				}
			},
			"drain": func(t *rapid.T) {
				if i := pick(t); failure == nil {
					drain(i)
				}
			},
			"reset": func(t *rapid.T) {
				i := pick(t)
				if failure != nil {
					return
				}
				e := open[i]
				open = append(open[:i], open[i+1:]...)
				e.abort()
				<-e.done
			},
		})
		for len(open) > 0 && failure == nil {
			drain(0)
		}
		if failure != nil {
			t.Fatal(failure)
		}
	})
}

// testStreamInteractive tests that writes come back while the connection
// stays open (STREAM-2).
func testStreamInteractive(ck *checker) {
	e, err := ck.openEcho()
	if err != nil {
		ck.Fatal(err)
	}
	defer func() { e.close(); <-e.done }()
	// The last write, one byte after the largest, also shows whatever the
	// server sent beyond an echo (a chunk written twice, say): waiting for
	// the echo's length alone would stop before such bytes arrive.
	for i, n := range []int{1, 2, 100, 1500, 64 << 10, 1} {
		if err := e.send(seeded(uint64(i), n)); err != nil {
			ck.Fatal(err)
		}
		if err := e.waitEcho(ck.o.prefix, ck.dl.D); err != nil {
			ck.Fatalf("a write of %d bytes did not come back while the connection stayed open: %v", n, err)
		}
	}
}

// testStreamHalfClose tests that after a half-close the server sends what
// is due and closes its side (STREAM-3).
func testStreamHalfClose(ck *checker) {
	halfClose(ck, "bytes", func(n int) []byte { return seeded(uint64(n), n) })
}

// halfClose sends data(n) of 1, 1000 and 200 KiB, half-closes, and wants
// the whole echo and EOF (STREAM-3, LINE-3).
func halfClose(ck *checker, what string, data func(n int) []byte) {
	for _, n := range []int{1, 1000, 200 << 10} {
		c, err := ck.dial()
		if err != nil {
			ck.Fatal(err)
		}
		msg := data(n)
		if err := c.write(msg); err != nil {
			ck.Fatal(err)
		}
		if err := c.halfClose(); err != nil {
			ck.Fatal(err)
		}
		got, err := c.readToEOF(len(msg) + 1<<20)
		if err != nil {
			ck.Fatalf("after sending %d %s and half-closing, the client did not read EOF: %v", n, what, err)
		}
		if _, err := c.tr.verify(c.id, ck.o.prefix, got, msg); err != nil {
			ck.Fatalf("after sending %d %s and half-closing: %v", n, what, err)
		}
		c.close()
	}
}

// testStreamFullDuplex tests that megabytes written while the echo is read
// concurrently all come back, on two connections at once (STREAM-4).
func testStreamFullDuplex(ck *checker) {
	sizes := []int{1 << 20, 8 << 20}
	errs := make(chan error, len(sizes))
	// Both connections open, and accepted, before either sends: the
	// transfers overlap whatever the scheduler does, and a server that
	// mixes up its connections shows it in every run, not in the runs
	// where it took the second only after the first was done. (A server
	// that takes one connection at a time is given D, then the transfers
	// go ahead: that is CONC-1's business.)
	es := make([]*echoConn, len(sizes))
	cs := make([]*conn, len(sizes))
	for i := range sizes {
		e, err := ck.openEcho()
		if err != nil {
			ck.Fatal(err)
		}
		es[i], cs[i] = e, e.conn
	}
	ep := ck.server().ep
	ck.poll(ck.dl.D, func() bool { return acceptedCount(ep, cs) == len(cs) })
	for i, n := range sizes {
		e := es[i]
		go func() {
			defer func() { e.close(); <-e.done }()
			data := seeded(uint64(i+1), n)
			chunk := 1 << (10 + 2*i) // 1 KiB writes on one, 4 KiB... on the other
			for off := 0; off < n; off += chunk {
				if err := e.send(data[off:min(off+chunk, n)]); err != nil {
					got, _, _ := e.snapshot()
					errs <- fmt.Errorf("%v, with %d of %d bytes sent and %d echoed", err, off, n, len(got))
					return
				}
				chunk = min(chunk*2, 256<<10)
			}
			if err := e.halfClose(); err != nil {
				errs <- err
				return
			}
			errs <- e.waitEcho(ck.o.prefix, ck.dl.transfer(n))
		}()
	}
	for range sizes {
		if err := <-errs; err != nil {
			ck.Errorf("full-duplex transfer: %v", err)
		}
	}
}

// boundaryData is n bytes to send, the caller's to change: every byte
// value first (0x00 to 0xff), then pseudo-random bytes, so that a lost,
// altered or moved block shows.
func boundaryData(n int) []byte { return bytes.Clone(boundaryView(n)) }

// boundaryView is boundaryData, not to be changed: every size is a prefix
// of the same bytes, made once, so that the fixed cases (tens of MiB each
// run) cost no generation each.
func boundaryView(n int) []byte {
	b := boundaryBytes()
	if n > len(b) {
		b = makeBoundary(n)
	}
	return b[:n:n]
}

var boundaryBytes = sync.OnceValue(func() []byte { return makeBoundary(8<<20 + 1) })

func makeBoundary(n int) []byte {
	b := seeded(1, n)
	for i := range min(n, 256) {
		b[i] = byte(i)
	}
	return b
}

// boundarySizes are the sizes a byte-losing server is most likely to trip
// over: 1, 2, 3 and each power of two from 4 to max with its neighbours.
func boundarySizes(max int) []int {
	sizes := []int{1, 2, 3}
	for p := 4; p <= max; p <<= 1 {
		for _, n := range []int{p - 1, p, p + 1} {
			if n > sizes[len(sizes)-1] && n <= max {
				sizes = append(sizes, n)
			}
		}
	}
	return sizes
}

// streamBoundaries runs STREAM-1's fixed cases before its random ones, so
// that a server that drops, duplicates, reorders or alters bytes fails in
// every run, not in the runs whose draws reach the fault: the empty
// connection, each boundary size in one write, smallest first (the first
// failure is the minimal counterexample), a message cut into writes of
// every size class, a reset, and the most connections the random runs
// hold open at once.
func streamBoundaries(ck *checker) {
	ck.fixedEcho(nil, 1) // the empty connection: the prefix alone, then EOF
	for _, n := range boundarySizes(8 << 20) {
		ck.fixedEcho(boundaryView(n), n)
	}
	for c := 1; c <= 256<<10; c <<= 1 {
		n := min(max(4*c+1, 8193), 1<<20+1)
		ck.fixedEcho(boundaryView(n), c)
	}
	ck.fixedReset(boundaryView(4096))
	openAtOnce(ck, func(i int) []byte { return boundaryView(1000 + i) })
}

// fixedReset is the fixed case of a client that resets after sending
// data, as the random runs' resets do. Once the server has let go of it,
// a server that died of it is dead, and the next case finds it so, every
// run.
func (ck *checker) fixedReset(data []byte) {
	e, err := ck.openEcho()
	if err != nil {
		ck.Fatal(err)
	}
	if err := e.send(data); err != nil {
		ck.Fatal(err)
	}
	ino := ck.serverInode(e.conn)
	e.abort()
	<-e.done
	ck.awaitLetGo(ino)
}

// openAtOnce is the fixed case of the random runs' widest state: as many
// connections open at once as they open (4), each echoed (data(i) on the
// i-th) while the ones opened before it wait, idle, the last opened
// first. A server that cannot hold them (serial, capped, blocked by an
// idle client) fails here in every run, not when the draws happen to
// open that many.
func openAtOnce(ck *checker, data func(i int) []byte) {
	const k = 4
	es, closeAll := ck.openEchoes(k)
	defer closeAll()
	for i := k - 1; i >= 0; i-- {
		e, data := es[i], data(i)
		if err := e.send(data); err != nil {
			ck.Fatal(err)
		}
		if err := e.halfClose(); err != nil {
			ck.Fatal(err)
		}
		if err := e.waitEcho(ck.o.prefix, ck.dl.transfer(len(data))); err != nil {
			ck.Fatalf("conn %d of %d open at once (the last opened is echoed first, the others idle): %v\n(a fixed case)", e.id, k, err)
		}
		if err := e.settle(ck.o.prefix, ck.dl.settle); err != nil {
			ck.Fatalf("conn %d of %d open at once: %v\n(a fixed case)", e.id, k, err)
		}
	}
}

// fixedEcho is one fixed case of STREAM-1 or LINE-1: data in writes of
// chunk bytes, then a half-close; what finally came back must be the
// prefix and data, exactly.
func (ck *checker) fixedEcho(data []byte, chunk int) {
	e, err := ck.openEchoFor(len(data))
	if err != nil {
		ck.Fatal(err)
	}
	defer func() { e.close(); <-e.done }()
	for off := 0; off < len(data); off += chunk {
		if err := e.send(data[off:min(off+chunk, len(data))]); err != nil {
			ck.Fatalf("conn %d, %d bytes sent in all (writes of %d bytes): %v", e.id, len(data), chunk, err)
		}
	}
	if err := e.halfClose(); err != nil {
		ck.Fatal(err)
	}
	if e.waitEcho(ck.o.prefix, ck.dl.transfer(len(data))) == nil {
		_ = e.settle(ck.o.prefix, ck.dl.settle)
	} else {
		// Wait for the end, so that the message reports what finally
		// came back, whatever the timing.
		select {
		case <-e.done:
		case <-time.After(ck.dl.D):
		}
	}
	got, _, _ := e.snapshot()
	_, err = e.tr.verify(e.id, ck.o.prefix, got, data)
	if err != nil {
		how := "in one write"
		if chunk < len(data) {
			how = fmt.Sprintf("in writes of %d bytes", chunk)
		}
		ck.Fatalf("conn %d, %d bytes sent in all: %v\n(a fixed case: the bytes %s, then a half-close)", e.id, len(data), err, how)
	}
}
