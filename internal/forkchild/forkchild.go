// Package forkchild is the whole life of a child of the forking reference
// server (impl/forking): wait for one connection on a control socket, serve
// it, exit. The server's own binary runs it through forking.Init, and
// cmd/echochild is a program of it alone.
//
// Like serveconn it imports no net, so that cmd/echochild links without
// cgo and starts as a static binary.
package forkchild

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/echoconform/echoconform/internal/serveconn"
)

// Env marks a process started by the forking server to handle one
// connection; its value is the encoded Config.
const Env = "ECHOCONFORM_FORKING_CHILD"

// CtrlFD is the child's end of its control socket.
const CtrlFD = 3

// MaxPrefix bounds the rendered prefix, which the server sends in the
// message that hands over the connection: it renders the child's {pid} and
// {ppid} itself, knowing both, so that a child needs no template engine.
const MaxPrefix = 64 << 10

// Config is what a child speaks, defaults resolved.
type Config struct {
	Protocol string // stream, oneshot or line (echo.Protocol's names)
	MaxMsg   int
	Quiet    time.Duration
	MaxLine  int
}

// Encode is the value of Env for c.
func (c Config) Encode() string {
	return strings.Join([]string{"v4", c.Protocol, strconv.Itoa(c.MaxMsg), strconv.FormatInt(int64(c.Quiet), 10), strconv.Itoa(c.MaxLine)}, "|")
}

// Decode parses the value of Env.
func Decode(v string) (Config, error) {
	f := strings.Split(v, "|")
	bad := fmt.Errorf("bad %s=%q (a server and a child of different versions?)", Env, v)
	if len(f) != 5 || f[0] != "v4" || (f[1] != "stream" && f[1] != "oneshot" && f[1] != "line") {
		return Config{}, bad
	}
	maxMsg, err := strconv.Atoi(f[2])
	if err != nil || maxMsg <= 0 {
		return Config{}, bad
	}
	quiet, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil || quiet <= 0 {
		return Config{}, bad
	}
	maxLine, err := strconv.Atoi(f[4])
	if err != nil || maxLine <= 0 {
		return Config{}, bad
	}
	return Config{Protocol: f[1], MaxMsg: maxMsg, Quiet: time.Duration(quiet), MaxLine: maxLine}, nil
}

// Message is what the server sends with the connection's descriptor: a
// marker byte (so that the message is never empty) and the prefix.
func Message(prefix []byte) []byte { return append([]byte{'c'}, prefix...) }

// Run serves one connection as the child configured by v (the value of
// Env) and returns the process's exit status.
func Run(v string) int {
	cfg, err := Decode(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "forking child: %v\n", err)
		return 2
	}
	fd, prefix, err := receive(CtrlFD)
	_ = unix.Close(CtrlFD)
	if err != nil {
		fmt.Fprintf(os.Stderr, "forking child: %v\n", err)
		return 2
	}
	if fd < 0 {
		return 0 // ended while spare: the server stopped or had no use for us
	}
	// Non-blocking, the descriptor joins the runtime's poller: reads take
	// deadlines (oneshot's quiet period).
	if err := unix.SetNonblock(fd, true); err != nil {
		fmt.Fprintf(os.Stderr, "forking child: %v\n", err)
		return 2
	}
	c := fileConn{os.NewFile(uintptr(fd), "conn")}
	defer c.Close()
	switch cfg.Protocol {
	case "oneshot":
		_ = serveconn.Oneshot(c, prefix, cfg.MaxMsg, cfg.Quiet)
	case "line":
		_ = serveconn.Line(c, prefix, cfg.MaxLine)
	default:
		_ = serveconn.Stream(c, prefix)
	}
	return 0
}

// receive blocks until the server sends the connection over the control
// socket ctrl and returns its descriptor and the prefix, or returns -1 at
// EOF (the server closed its end, or died).
func receive(ctrl int) (int, []byte, error) {
	buf := make([]byte, 1+MaxPrefix)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, flags, _, err := unix.Recvmsg(ctrl, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, nil, fmt.Errorf("control socket: %w", err)
		}
		if n == 0 && oobn == 0 {
			return -1, nil, nil
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return -1, nil, fmt.Errorf("control socket: no descriptor in the message (%v)", err)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			for _, fd := range fds {
				_ = unix.Close(fd)
			}
			return -1, nil, fmt.Errorf("control socket: want one descriptor, got %d (%v)", len(fds), err)
		}
		if n < 1 || flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
			_ = unix.Close(fds[0])
			return -1, nil, fmt.Errorf("control socket: malformed message (%d bytes, flags %#x)", n, flags)
		}
		return fds[0], buf[1:n], nil
	}
}

// fileConn is a connected socket as a serveconn.Conn.
type fileConn struct{ *os.File }

func (c fileConn) CloseWrite() error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_WR) }); err != nil {
		return err
	}
	return serr
}
