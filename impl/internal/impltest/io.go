package impltest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/reply"
)

// Pattern returns n deterministic bytes for seed: every byte value once,
// in order, then a ChaCha8 stream.
func Pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	k := 0
	for ; k < n && k < 256; k++ {
		b[k] = byte(k)
	}
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	_, _ = rand.NewChaCha8(key).Read(b[k:])
	return b
}

// Fixed returns a write-size generator that always says n.
func Fixed(n int) func() int { return func() int { return n } }

// Random returns a deterministic write-size generator: sizes from 1 byte
// to 128 KiB, log-uniform, so that small and large writes both occur.
func Random(seed uint64) func() int {
	r := rand.New(rand.NewPCG(seed, 0x6563686f))
	return func() int {
		e := r.IntN(18) // 1 << 0 .. 1 << 17
		return 1<<e + r.IntN(1<<e)
	}
}

// WriteChunks writes data in writes of the sizes next returns and then
// half-closes c.
func WriteChunks(c Conn, data []byte, next func() int) error {
	for len(data) > 0 {
		k := min(max(next(), 1), len(data))
		if _, err := c.Write(data[:k]); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		data = data[k:]
	}
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("half-close: %w", err)
	}
	return nil
}

// Exchange sends data in writes of the sizes next returns, half-closes,
// and reads to EOF meanwhile (full duplex: a large transfer written before
// reading would fill both socket buffers and deadlock). The whole exchange
// must finish within within; it returns every byte read.
func Exchange(t testing.TB, c Conn, data []byte, next func() int, within time.Duration) []byte {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(within)))
	werr := make(chan error, 1)
	go func() { werr <- WriteChunks(c, data, next) }()
	got, rerr := io.ReadAll(c)
	if rerr != nil {
		_ = c.Close() // unblocks the writer
	}
	err := <-werr
	require.NoError(t, rerr, "read after %d bytes", len(got))
	require.NoError(t, err)
	return got
}

// ReadToEOF reads the rest of c until EOF, which must come within within.
func ReadToEOF(t testing.TB, c net.Conn, within time.Duration) []byte {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(within)))
	got, err := io.ReadAll(c)
	require.NoError(t, err, "reading to EOF (hang guard %v; after %d bytes %s)", within, len(got), reply.Show(got))
	return got
}

// SplitReply checks that reply begins with a rendering of tmpl and returns
// the values it carried and the bytes after it.
func SplitReply(t testing.TB, tmpl echo.Template, got []byte) (echo.Values, []byte) {
	t.Helper()
	v, n, err := tmpl.Match(got)
	require.NoError(t, err, "prefix %q of the reply %s", tmpl, reply.Show(got))
	return v, got[n:]
}

// ExpectReply writes msg without half-closing and reads, within D, a
// rendering of tmpl followed by exactly msg. It returns the prefix values.
// With the zero template it checks a plain echo.
func ExpectReply(t testing.TB, c Conn, tmpl echo.Template, msg []byte) echo.Values {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(D)))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		werr <- err
	}()
	v, got, err := readPrefix(c, tmpl)
	if err == nil {
		got, err = readAtLeast(c, got, len(msg))
	}
	require.NoError(t, <-werr, "write %d bytes", len(msg))
	require.NoError(t, err, "reading the reply to %d bytes (hang guard %v)", len(msg), D)
	RequireBytes(t, msg, got, "echo")
	return v
}

// ExpectEcho is ExpectReply for a connection whose prefix was read already.
func ExpectEcho(t testing.TB, c Conn, msg []byte) {
	t.Helper()
	ExpectReply(t, c, echo.Template{}, msg)
}

// ExpectPrefix reads the rendering of tmpl that a server sends as it
// takes c, before any byte was sent: c is being served (by a child, in
// the fork model) once it returns. It returns the prefix values.
func ExpectPrefix(t testing.TB, c Conn, tmpl echo.Template) echo.Values {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(D)))
	v, rest, err := readPrefix(c, tmpl)
	require.NoError(t, err, "reading the prefix of a connection that sent nothing (hang guard %v)", D)
	require.Empty(t, rest, "bytes after the prefix, before anything was sent")
	return v
}

// ExpectEOF half-closes c and expects EOF within D with no byte before it.
func ExpectEOF(t testing.TB, c Conn) {
	t.Helper()
	require.NoError(t, c.CloseWrite())
	rest := ReadToEOF(t, c, D)
	require.Empty(t, rest, "bytes after the last echo")
}

// readPrefix reads until the bytes read begin with a whole rendering of
// tmpl and returns its values and the bytes read after it.
func readPrefix(c net.Conn, tmpl echo.Template) (echo.Values, []byte, error) {
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		v, n, err := tmpl.Match(buf)
		if err == nil {
			return v, buf[n:], nil
		}
		if !errors.Is(err, echo.ErrShort) {
			return v, nil, fmt.Errorf("the reply does not start with the prefix %q: %w (got %s)", tmpl, err, reply.Show(buf))
		}
		k, err := c.Read(tmp)
		buf = append(buf, tmp[:k]...)
		if err != nil {
			return v, nil, fmt.Errorf("reading the prefix after %s: %w", reply.Show(buf), err)
		}
	}
}

// readAtLeast reads from c, after the bytes in buf, until it holds n bytes.
func readAtLeast(c net.Conn, buf []byte, n int) ([]byte, error) {
	tmp := make([]byte, 64<<10)
	for len(buf) < n {
		k, err := c.Read(tmp)
		buf = append(buf, tmp[:k]...)
		if err != nil {
			return buf, fmt.Errorf("after %d of %d bytes: %w", len(buf), n, err)
		}
	}
	return buf, nil
}

// RequireBytes fails unless got equals want, describing the first
// difference rather than dumping megabytes.
func RequireBytes(t testing.TB, want, got []byte, what string) {
	t.Helper()
	if err := reply.Compare(got, want); err != nil {
		require.Failf(t, what+" differs", "%v", err)
	}
}
