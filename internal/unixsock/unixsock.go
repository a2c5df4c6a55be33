// Package unixsock listens on a Unix-domain stream socket at a path of the
// file system, with the policy of the reference servers (issue 14) for a
// file already there, and removes the socket file only if it is still the
// one the listener bound.
//
// A path where something listens is in use: Listen refuses it, as
// net.Listen refuses a TCP port in use. A socket file where nothing listens
// (connect is refused: its server died without removing it) is stale:
// Listen removes it and binds. A path that is not a socket is never
// removed: Listen refuses it.
package unixsock

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// Addr is how an address names a Unix socket's path in the flags of the
// commands: -addr unix:/run/echo.sock.
const Addr = "unix:"

// probeTimeout bounds the connect that tells a live socket from a stale
// one. A live server's backlog that is full answers EAGAIN at once; a
// connect blocks only on a server that stopped accepting.
const probeTimeout = 2 * time.Second

// ErrInUse is returned by Listen when a server listens at the path.
var ErrInUse = errors.New("address in use: a server listens on it")

// ErrNotSocket is returned by Listen when the path exists and is not a
// socket.
var ErrNotSocket = errors.New("exists and is not a socket")

// Socket is a Unix listener and the socket file it bound, which Remove
// removes if it is still that file. The listener's own Close does not
// remove the file.
type Socket struct {
	// Listener is what a server serves: the *net.UnixListener itself, so
	// that a server that takes its descriptor (impl/eventloop) can.
	Listener *net.UnixListener
	path     string
	bound    os.FileInfo // the socket file as bound; nil if it could not be read
}

// Listen listens on a Unix-domain stream socket at path. A stale socket
// file at path is removed first; a path where a server listens, or that
// is not a socket, is refused (ErrInUse, ErrNotSocket) and left alone.
func Listen(path string) (*Socket, error) {
	if st, err := os.Lstat(path); err == nil {
		if err := removeStale(path, st); err != nil {
			return nil, &net.OpError{Op: "listen", Net: "unix", Addr: &net.UnixAddr{Name: path, Net: "unix"}, Err: err}
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			// Another server bound it since the check.
			return nil, &net.OpError{Op: "listen", Net: "unix", Addr: &net.UnixAddr{Name: path, Net: "unix"}, Err: ErrInUse}
		}
		return nil, err
	}
	// The file is removed by Remove, after checking it is still ours.
	ln.SetUnlinkOnClose(false)
	s := &Socket{Listener: ln, path: path}
	if st, err := os.Lstat(path); err == nil {
		s.bound = st
	}
	return s, nil
}

// removeStale removes the socket file st at path if no server listens on
// it.
func removeStale(path string, st fs.FileInfo) error {
	if st.Mode().Type() != fs.ModeSocket {
		return ErrNotSocket
	}
	c, err := net.DialTimeout("unix", path, probeTimeout)
	switch {
	case err == nil:
		c.Close()
		return ErrInUse
	case errors.Is(err, syscall.ECONNREFUSED):
		// Stale: removed, unless another server replaced it meanwhile.
		if now, err := os.Lstat(path); err == nil && os.SameFile(st, now) {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	case errors.Is(err, syscall.ENOENT):
		return nil // removed meanwhile
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, os.ErrDeadlineExceeded):
		return ErrInUse // a live server whose backlog is full
	}
	return err
}

// Remove removes the socket file if it is still the one Listen bound: a
// file another server has bound at the path since (after someone removed
// this one) is left alone. Call it before Close, so that no server can
// find the file stale and bind anew in between. It is safe to call more
// than once.
func (s *Socket) Remove() error {
	if s.bound == nil {
		return nil
	}
	now, err := os.Lstat(s.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if !os.SameFile(s.bound, now) {
		return nil // not ours any more
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
