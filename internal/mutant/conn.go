package mutant

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/echoconform/echoconform/echo"
)

// defaultQuiet ends a oneshot message after this much silence. Under the
// race detector, on a loaded machine, a client's 20 ms pause (SPEC.md
// ONESHOT-4) can stretch past the references' 100 ms: the zoo waits longer.
var defaultQuiet = func() time.Duration {
	if RaceEnabled {
		return 2 * echo.DefaultQuiet
	}
	return echo.DefaultQuiet
}()

// sockConn is a connection of either transport (*net.TCPConn,
// *net.UnixConn).
type sockConn interface {
	net.Conn
	CloseWrite() error
	SyscallConn() (syscall.RawConn, error)
	File() (*os.File, error)
}

// connBox holds a connection shared between goroutines.
type connBox struct{ p atomic.Pointer[sockConn] }

func (b *connBox) set(c sockConn) { b.p.Store(&c) }
func (b *connBox) get() sockConn {
	if p := b.p.Load(); p != nil {
		return *p
	}
	return nil
}

// handler serves one connection, correctly but for its knobs. Its correct
// path is the references' (impl/internal/handler.ServeConn), with the echo
// copied through user space so that faults can be put in.
type handler struct {
	c         sockConn
	out       func() sockConn // where the echo goes; nil: c
	cfg       echo.Config
	k         Knobs
	pid, ppid int
	first     []byte        // bytes the accept loop read already
	closing   chan struct{} // closed when the server shuts down (thread model)
	lastWord  func()        // called before the server's FIN: ExitAfterOne
}

func (h *handler) serve() {
	defer h.c.Close()
	switch h.cfg.Protocol {
	case echo.Oneshot:
		h.oneshot()
	case echo.Line:
		h.line()
	default:
		h.stream()
	}
}

// prefix renders the prefix, with the prefix faults.
func (h *handler) prefix() []byte {
	pid, ppid := h.pid, h.ppid
	switch {
	case h.k.PIDPlusOne:
		pid++
	case h.k.PIDIsParent:
		pid = h.ppid
	case h.k.PPIDIsSelf:
		ppid = h.pid
	}
	p := h.cfg.Prefix.Render(pid, ppid)
	if h.k.PrefixNoSpace {
		p = bytes.TrimRight(p, " ")
	}
	return p
}

func (h *handler) write(c sockConn, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if h.k.WriteDelay > 0 {
		time.Sleep(h.k.WriteDelay)
	}
	if h.k.WriteLock {
		writeLock.Lock()
		defer writeLock.Unlock()
	}
	_, err := c.Write(p)
	h.crashOn(err)
	return err
}

// crashOn ends the process on a reset connection, with CrashOnReset.
func (h *handler) crashOn(err error) {
	if h.k.CrashOnReset && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		fmt.Fprintf(os.Stderr, "mutant: fatal: %v\n", err)
		os.Exit(3)
	}
}

// stream echoes until the client half-closes (SPEC.md STREAM-1..4).
func (h *handler) stream() {
	k := h.k
	prefix := h.prefix()
	if !k.PrefixEveryChunk {
		if h.write(h.c, prefix) != nil {
			return
		}
	}
	var in, out int64 // bytes received, bytes echoed
	var held []byte   // EchoOnEOF
	// echo sends one chunk received; it reports false when the connection
	// is done with.
	echoChunk := func(p []byte) bool {
		data := p
		if k.DropAtSet && in <= k.DropAt && k.DropAt < in+int64(len(p)) {
			i := k.DropAt - in
			data = append(append([]byte(nil), p[:i]...), p[i+1:]...)
		}
		if k.DropNUL {
			data = bytes.ReplaceAll(data, []byte{0}, nil)
		}
		if k.CRLF {
			data = bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
		}
		dup := k.DupAtSet && in <= k.DupAt && k.DupAt < in+int64(len(p))
		in += int64(len(p))
		if k.EchoOnEOF {
			held = append(held, data...)
			return true
		}
		if k.CutAfter > 0 && out+int64(len(data)) >= k.CutAfter {
			// The echo ends here (FIN); the rest of the input is read and
			// dropped until the client half-closes.
			_ = h.write(h.dst(), data[:k.CutAfter-out])
			_ = h.c.CloseWrite()
			_, _ = io.Copy(io.Discard, h.c)
			return false
		}
		w := data
		if k.PrefixEveryChunk {
			w = append(append([]byte(nil), prefix...), data...)
		}
		if h.write(h.dst(), w) != nil && !k.CrossTalk {
			return false
		}
		out += int64(len(data))
		if dup {
			_ = h.write(h.dst(), data)
		}
		return true
	}
	if len(h.first) > 0 && !echoChunk(h.first) {
		return
	}
	buf := make([]byte, 64<<10)
	if k.ReadSize > 0 {
		buf = buf[:k.ReadSize]
	}
	for {
		n, err := h.c.Read(buf)
		if n > 0 && !echoChunk(buf[:n]) {
			return
		}
		if err == io.EOF {
			if k.CrashOnEmpty && in == 0 {
				fmt.Fprintf(os.Stderr, "mutant: fatal: a connection closed before sending anything\n")
				os.Exit(3)
			}
			break
		}
		if err != nil {
			h.crashOn(err)
			return
		}
	}
	if k.EchoOnEOF && h.write(h.c, held) != nil {
		return
	}
	h.finish()
}

func (h *handler) dst() sockConn {
	if h.out != nil {
		if c := h.out(); c != nil {
			return c
		}
	}
	return h.c
}

// finish ends a connection whose client has half-closed.
func (h *handler) finish() {
	switch {
	case h.k.NoFIN:
		<-h.closing
	case h.k.ResetClose:
		h.resetWhenDelivered()
	default:
		h.beforeFIN()
		_ = h.c.CloseWrite()
	}
}

func (h *handler) beforeFIN() {
	if h.lastWord != nil {
		h.lastWord()
	}
}

// oneshot reads one message (until EOF, max-msg, or a quiet period after
// the last bytes), replies with the prefix and the message, and closes
// (SPEC.md ONESHOT-1..5).
func (h *handler) oneshot() {
	k := h.k
	quiet := h.cfg.Quiet
	if quiet <= 0 {
		quiet = defaultQuiet
	}
	max := h.cfg.MaxMsg
	if max <= 0 {
		max = echo.DefaultMaxMsg
	}
	if k.HalfMax {
		max /= 2
	}
	msg := make([]byte, max)
	n := copy(msg, h.first)
	eof := false
	for n < len(msg) {
		r, err := h.c.Read(msg[n:])
		n += r
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != io.EOF {
				h.crashOn(err)
				return
			}
			eof = true
			break
		}
		if k.SingleRead {
			break
		}
		if !k.ReadToEOF {
			// The first read waits as long as the client needs; after that
			// the message ends at the first quiet period.
			_ = h.c.SetReadDeadline(time.Now().Add(quiet))
		}
	}
	if k.CrashOnEmpty && eof && n == 0 {
		// The unchecked empty message: index out of range. The panic is on
		// a goroutine of its own, as in a worker pool, so no deferred close
		// answers the client before the process dies: the kernel closes the
		// listener first, and the next client is refused, every run.
		go func() {
			var empty []byte
			_ = empty[0]
		}()
		select {}
	}
	reply := append(h.prefix(), msg[:n]...)
	if h.write(h.c, reply) != nil {
		return
	}
	switch {
	case k.ResetClose:
		h.resetWhenDelivered()
		return
	case k.NoCloseSelf:
		_ = h.c.SetReadDeadline(time.Time{})
		_, _ = io.Copy(io.Discard, h.c)
		return
	}
	h.beforeFIN()
	if err := h.c.CloseWrite(); err != nil {
		return
	}
	if !eof {
		// Lingering close: a client still sending past max-msg would get a
		// reset, and a reset can discard the reply before it is read.
		_ = h.c.SetReadDeadline(time.Now().Add(quiet))
		_, _ = io.CopyN(io.Discard, h.c, 1<<20)
	}
}

// resetWhenDelivered makes the coming close abortive (SO_LINGER 0: RST
// instead of FIN), once the peer has acknowledged everything written: the
// client then reads the whole echo and a reset instead of EOF. (A reset
// sooner destroys whatever is still queued, and how much that is depends on
// timing.)
func (h *handler) resetWhenDelivered() {
	if rc, err := h.c.SyscallConn(); err == nil {
		// The bound is a hang guard only: a second was once too short
		// for an 8 MiB echo under the race detector and busy loops, and
		// the reset then destroyed echo that STREAM-1 rightly missed.
		for limit := time.Now().Add(30 * time.Second); time.Now().Before(limit); time.Sleep(time.Millisecond) {
			queued := 0
			_ = rc.Control(func(fd uintptr) { queued, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
			if err != nil || queued == 0 {
				break
			}
		}
	}
	if l, ok := h.c.(interface{ SetLinger(int) error }); ok {
		_ = l.SetLinger(0)
	}
}

// writeLock is held, with WriteLock, by the connection writing: one thread
// serving every client with blocking writes.
var writeLock sync.Mutex

// partialLock is held, with LineBlockPartial, by the connection whose line
// has begun, while it reads the rest: the one thread of a select loop,
// blocked in its readline.
var partialLock sync.Mutex

// line echoes a line at a time (SPEC.md LINE-1..6), with the line faults.
// Memory stays bounded by max-line, as in the references: a longer line
// goes back in pieces.
func (h *handler) line() {
	k := h.k
	if h.write(h.c, h.prefix()) != nil {
		return
	}
	maxLine := h.cfg.WithDefaults().MaxLine
	pending := append([]byte(nil), h.first...) // bytes of a line not yet complete
	cut := truncator{max: k.LineTruncate}
	locked := false
	defer func() {
		if locked {
			partialLock.Unlock()
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := h.c.Read(buf)
		if k.LineBlockPartial && !locked && n > 0 {
			// The one thread serves this client now: everyone else waits.
			partialLock.Lock()
			locked = true
		}
		p := buf[:n]
		if k.LineFirstOnly {
			if i := bytes.IndexByte(p, '\n'); i >= 0 && len(pending) == 0 {
				p = p[:i+1] // what follows the first line of the read is lost
			}
		}
		if k.LineTruncate > 0 {
			p = cut.cut(p)
		}
		pending = append(pending, p...)
		end := bytes.LastIndexByte(pending, '\n') + 1
		if k.LineCrashLong && longestLine(pending) > maxLine {
			fmt.Fprintf(os.Stderr, "mutant: fatal: a line longer than %d bytes overran the buffer\n", maxLine)
			os.Exit(3)
		}
		if end == 0 && len(pending) >= maxLine {
			end = len(pending)
		}
		out := pending[:end]
		if k.LineStripCR {
			out = bytes.ReplaceAll(out, []byte("\r\n"), []byte("\n"))
		}
		if locked && len(out) > 0 {
			// The echo goes out without the lock: the fault is the
			// readline, not the write (that is write-lock's).
			partialLock.Unlock()
			locked = false
		}
		if len(out) > 0 && h.write(h.c, out) != nil {
			return
		}
		pending = append(pending[:0], pending[end:]...)
		switch {
		case locked && len(pending) == 0:
			partialLock.Unlock()
			locked = false
		case k.LineBlockPartial && !locked && len(pending) > 0 && err == nil:
			// A line has begun: everyone waits until it is complete.
			partialLock.Lock()
			locked = true
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			h.crashOn(err)
			return
		}
	}
	switch {
	case len(pending) == 0 || k.LineDropFinal:
	case k.LineAddNewline:
		pending = append(pending, '\n')
	case k.LineStripCR:
		pending = bytes.TrimSuffix(pending, []byte("\r"))
	}
	if !k.LineDropFinal && h.write(h.c, pending) != nil {
		return
	}
	h.finish()
}

// longestLine is the length of the longest line in p, newline included.
func longestLine(p []byte) int {
	longest := 0
	for line := range bytes.SplitAfterSeq(p, []byte("\n")) {
		longest = max(longest, len(line))
	}
	return longest
}

// truncator cuts every line longer than max to its first max-1 bytes and a
// newline, as fgets into a buffer of max bytes does when the caller throws
// the rest of the line away.
type truncator struct {
	max     int
	col     int  // bytes of the current line kept
	discard bool // the rest of a cut line is being thrown away
}

func (t *truncator) cut(p []byte) []byte {
	var out []byte
	for _, b := range p {
		switch {
		case t.discard:
			t.discard = b != '\n'
		case b == '\n':
			out, t.col = append(out, b), 0
		case t.col == t.max-1:
			out, t.col, t.discard = append(out, '\n'), 0, true
		default:
			out, t.col = append(out, b), t.col+1
		}
	}
	return out
}
