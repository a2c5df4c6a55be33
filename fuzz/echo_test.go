package fuzz

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"testing"

	"pgregory.net/rapid"

	"github.com/echoconform/echoconform/echo"
)

// check fails t unless reply is the prefix, naming the server's process
// (any process for the forking reference, whose children answer), followed
// by exactly want.
func check(t interface {
	Helper()
	Fatalf(string, ...any)
}, s *server, reply, want []byte) {
	t.Helper()
	v, n, err := prefix.Match(reply)
	if err != nil {
		t.Fatalf("reply %q: %v", clip(reply), err)
	}
	if v.PID <= 0 || (s.pid != 0 && v.PID != s.pid) {
		t.Fatalf("reply %q: {pid} %d, want the server process %d", clip(reply), v.PID, s.pid)
	}
	if !bytes.Equal(reply[n:], want) {
		t.Fatalf("sent %d bytes %q, got back %d bytes %q", len(want), clip(want), len(reply)-n, clip(reply[n:]))
	}
}

func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// FuzzStreamEcho: arbitrary bytes, cut into an arbitrary write schedule,
// come back as the prefix and the same bytes.
func FuzzStreamEcho(f *testing.F) {
	f.Add([]byte("hello"), []byte{1, 2})
	f.Add(bytes.Repeat([]byte{0, 0xff, '\n', '\r'}, 1100), []byte{0, 255, 7})
	f.Add([]byte{}, []byte{})
	s := serve(f, echo.Stream)
	f.Fuzz(func(t *testing.T, data, schedule []byte) {
		c, err := s.dial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		check(t, s, exchange(c, cut(data, schedule)), data)
	})
}

// FuzzOneshotEcho: a message of up to max-msg bytes, in pieces ended by a
// half-close, is answered with the prefix and the whole message.
func FuzzOneshotEcho(f *testing.F) {
	f.Add([]byte("Hello, server"), []byte{5})
	f.Add(bytes.Repeat([]byte{0}, 1024), []byte{})
	s := serve(f, echo.Oneshot)
	f.Fuzz(func(t *testing.T, msg, schedule []byte) {
		if len(msg) > echo.DefaultMaxMsg {
			msg = msg[:echo.DefaultMaxMsg]
		}
		c, err := s.dial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		check(t, s, exchange(c, cut(msg, schedule)), msg)
	})
}

// FuzzInterleavedEcho: two connections open at once, their writes
// interleaved as order says, each get back exactly their own bytes.
func FuzzInterleavedEcho(f *testing.F) {
	f.Add([]byte("first connection"), []byte("second"), []byte{0, 1, 1, 0})
	f.Add([]byte{0, 1, 2}, []byte{0xff}, []byte{1, 1, 1})
	s := serve(f, echo.Stream)
	f.Fuzz(func(t *testing.T, a, b, order []byte) {
		data := [2][]byte{a, b}
		pieces := [2][][]byte{cut(a, []byte{3, 5, 7, 11}), cut(b, []byte{2, 4, 8})}
		var conns [2]*net.TCPConn
		var replies [2]chan []byte
		for i := range conns {
			c, err := s.dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns[i], replies[i] = c, make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(c)
				replies[i] <- b
			}()
		}
		for _, o := range order {
			if i := int(o % 2); len(pieces[i]) > 0 {
				_, _ = conns[i].Write(pieces[i][0])
				pieces[i] = pieces[i][1:]
			}
		}
		for i, c := range conns {
			for _, p := range pieces[i] {
				_, _ = c.Write(p)
			}
			_ = c.CloseWrite()
		}
		for i := range conns {
			check(t, s, <-replies[i], data[i])
		}
	})
}

// streamProperty is one property, run both as a test (rapid shrinks its
// failures) and as a fuzz target (the engine's input drives rapid).
func streamProperty(s *server) func(*rapid.T) {
	return func(t *rapid.T) {
		// Sizes up to 8 KiB; large data from a seed, so that one draw
		// (one fuzz word) makes kilobytes.
		n := rapid.IntRange(0, 8192).Draw(t, "size")
		data := rapid.SliceOfN(rapid.Byte(), min(n, 64), min(n, 64)).Draw(t, "head")
		if n > 64 {
			data = append(data, seeded(rapid.Uint64().Draw(t, "seed"), n-64)...)
		}
		schedule := rapid.SliceOfN(rapid.ByteRange(1, 255), 0, 16).Draw(t, "schedule")
		c, err := s.dial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		check(t, s, exchange(c, cut(data, schedule)), data)
	}
}

func TestStreamRapid(t *testing.T) {
	rapid.Check(t, streamProperty(serve(t, echo.Stream)))
}

func FuzzStreamRapid(f *testing.F) {
	f.Fuzz(rapid.MakeFuzz(streamProperty(serve(f, echo.Stream))))
}

// seeded returns n pseudo-random bytes from seed.
func seeded(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
