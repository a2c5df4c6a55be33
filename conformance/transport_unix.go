package conformance

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/echoconform/echoconform/internal/proc"
)

// Unix-domain stream sockets: a server is a path. The kernel's sockets are
// found by inode over AF_UNIX sock_diag: a listener by the socket file the
// path names, a connection's server side as the peer of the client's
// socket.
func init() { registerTransport(unixTransport{}) }

type unixTransport struct{}

// maxSunPath is the longest path sun_path holds with its terminating NUL.
const maxSunPath = 107

// unixPrefix marks a Unix address: unix:/path.
const unixPrefix = "unix:"

// sockName is the socket's name inside the private directory.
const sockName = "echo.sock"

func (unixTransport) name() string { return "unix" }

// placeholders: {sock} in an argument; $SOCK in one names it too (a shell
// expands it from the environment).
func (unixTransport) placeholders() []string { return []string{"{sock}", "$SOCK", "${SOCK}"} }
func (unixTransport) noFile() string         { return "" }

func (unixTransport) parse(addr string) (endpoint, bool, error) {
	path, ok := strings.CutPrefix(addr, unixPrefix)
	if !ok {
		return nil, false, nil
	}
	if path == "" {
		return nil, true, fmt.Errorf("bad address %q: no path after %s", addr, unixPrefix)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, true, err
	}
	if len(abs) > maxSunPath {
		return nil, true, fmt.Errorf("bad address %q: a Unix socket path holds at most %d bytes", addr, maxSunPath)
	}
	return unixEndpoint{path: abs}, true, nil
}

// fresh makes a private directory (mode 0700) holding the path; release
// removes it, and so does the supervisor of a harness that was killed.
func (unixTransport) fresh() (endpoint, error) {
	for _, parent := range []string{os.TempDir(), "/tmp"} {
		if len(filepath.Join(parent, "echoconform-0123456789", sockName)) > maxSunPath {
			continue
		}
		dir, err := os.MkdirTemp(parent, "echoconform-")
		if err != nil {
			return nil, err
		}
		return unixEndpoint{path: filepath.Join(dir, sockName), dir: dir}, nil
	}
	return nil, fmt.Errorf("no temporary directory short enough for a Unix socket path (%d bytes)", maxSunPath)
}

func (t unixTransport) listenFresh() (endpoint, net.Listener, error) {
	ep, err := t.fresh()
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("unix", ep.(unixEndpoint).path)
	if err != nil {
		ep.release()
		return nil, nil, err
	}
	return ep, ln, nil
}

type unixEndpoint struct {
	path string
	dir  string // the private directory the harness made, or ""
}

func (unixEndpoint) transport() transport { return unixTransport{} }
func (e unixEndpoint) String() string     { return unixPrefix + e.path }
func (unixEndpoint) local() bool          { return true }

func (e unixEndpoint) expand(arg string) string { return strings.ReplaceAll(arg, "{sock}", e.path) }
func (e unixEndpoint) env() []string            { return []string{"SOCK=" + e.path} }

// dial connects as a blocking client does: a connect to a listener whose
// queue is full waits for room (Go's non-blocking connect would fail at
// once with EAGAIN), bounded by d.Timeout through SO_SNDTIMEO.
func (e unixEndpoint) dial(d net.Dialer, _ deadlines) (net.Conn, error) {
	addr := &net.UnixAddr{Name: e.path, Net: "unix"}
	fail := func(err error) (net.Conn, error) {
		if errors.Is(err, unix.EAGAIN) {
			err = os.ErrDeadlineExceeded // SO_SNDTIMEO passed
		}
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: addr, Err: err}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(os.NewSyscallError("socket", err))
	}
	f := os.NewFile(uintptr(fd), "unix") // owns fd from here
	defer f.Close()
	if d.Control != nil {
		if err := d.Control("unix", e.path, rawFD(fd)); err != nil {
			return fail(err)
		}
	}
	if d.Timeout > 0 {
		tv := unix.NsecToTimeval(d.Timeout.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
			return fail(os.NewSyscallError("setsockopt", err))
		}
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: e.path})
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fail(os.NewSyscallError("connect", err))
	}
	// The send timeout would bound the connection's writes too.
	zero := unix.Timeval{}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &zero)
	c, err := net.FileConn(f) // a non-blocking duplicate
	if err != nil {
		return fail(err)
	}
	return c, nil
}

// rawFD is a syscall.RawConn over a descriptor, for a Dialer's Control.
type rawFD int

func (fd rawFD) Control(f func(uintptr)) error  { f(uintptr(fd)); return nil }
func (fd rawFD) Read(func(uintptr) bool) error  { return errors.ErrUnsupported }
func (fd rawFD) Write(func(uintptr) bool) error { return errors.ErrUnsupported }

func (e unixEndpoint) listeners() ([]proc.Listener, error) {
	ls, err := proc.UnixListeners(e.path)
	if err != nil {
		return nil, err
	}
	out := make([]proc.Listener, len(ls))
	for i, l := range ls {
		out[i] = proc.Listener{Inode: l.Inode, Queue: l.Queue, Backlog: l.Backlog}
	}
	return out, nil
}

var _ syscall.RawConn = rawFD(0)

// side is the server's side of the client connection c.
func (e unixEndpoint) side(c net.Conn) (s proc.UnixSocket, accepted, found bool, err error) {
	s, _, accepted, found, err = e.sides(c)
	return s, accepted, found, err
}

// sides are both sides of the client connection c: the server's, the
// client's.
func (unixEndpoint) sides(c net.Conn) (s, client proc.UnixSocket, accepted, found bool, err error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return s, client, false, false, fmt.Errorf("a %T is not a socket", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return s, client, false, false, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { s, client, accepted, found, serr = proc.UnixConnection(int(fd)) }); err != nil {
		return s, client, false, false, err
	}
	return s, client, accepted, found, serr
}

func (e unixEndpoint) accepted(cs []net.Conn) map[net.Conn]bool {
	out := map[net.Conn]bool{}
	for _, c := range cs {
		_, ok, _, _ := e.side(c)
		out[c] = ok
	}
	return out
}

func (e unixEndpoint) inode(c net.Conn) (uint64, error) {
	s, accepted, _, err := e.side(c)
	if !accepted {
		return 0, err
	}
	return s.Inode, err
}

func (e unixEndpoint) recvQueue(c net.Conn) (int, bool, bool, error) {
	s, accepted, found, err := e.side(c)
	return s.Recv, accepted, found, err
}

// queues: a Unix stream socket's only backpressure is its sender's: a
// write waits while what it wrote and its peer has not read (sk_wmem_alloc)
// fills its send buffer. The buffer fills at once (the client's receive
// buffer plays no part), and a full one says only that the server's next
// write waits: a server that writes each chunk it reads may be between
// two, its last write done. So the server's write to c is taken to wait
// once, besides, the server has read more of the client's bytes than it
// has written back to it (the client reads nothing: what the server wrote
// is all in the client's receive queue): it holds echo it could not
// write, and is in that write.
func (e unixEndpoint) queues(c net.Conn, sent int) (proc.Queues, bool, error) {
	s, client, accepted, found, err := e.sides(c)
	if !accepted {
		return proc.Queues{}, found, err
	}
	read, written := sent-s.Recv, client.Recv
	return proc.Queues{Recv: s.Recv, Send: s.WMem, SendFull: s.SendFull() && read > written}, found, err
}

// leftover: the socket file is still there once the server stopped.
func (e unixEndpoint) leftover() string {
	fi, err := os.Lstat(e.path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("the socket file %s (%v) remained after the server stopped: a server removes the file it bound", e.path, fi.Mode())
}

func (e unixEndpoint) release() {
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

func (e unixEndpoint) owned() string { return e.dir }

func (unixEndpoint) refused() string {
	return "whenever the server accepts more slowly than they arrive, a client beyond it that connects without blocking (Go, Node, asyncio) is refused at once with EAGAIN, and a blocking one waits"
}
