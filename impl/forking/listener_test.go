package forking_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/forking"
	"github.com/echoconform/echoconform/impl/internal/impltest"
	"github.com/echoconform/echoconform/internal/proc"
)

// TestChildHoldsNoListener tests that the child serving a connection holds
// the connection and not the server's listening socket, on TCP as on a Unix
// socket (SPEC.md SHUT-2: a child that holds it keeps the address
// accepting after the server is gone). The listener is close-on-exec and
// never handed over.
func TestChildHoldsNoListener(t *testing.T) {
	for _, m := range []impltest.Model{echochildModel(echochild), echochildModel(echochild).OverUnix()} {
		name := "tcp"
		if m.Unix {
			name = "unix"
		}
		t.Run(name, func(t *testing.T) {
			impltest.VerifyNone(t)
			var listener uint64 // the listening socket's inode
			r := impltest.StartWith(t, m, echo.Config{Protocol: echo.Stream, Prefix: impltest.Prefix}, func(ln net.Listener) net.Listener {
				listener = socketInode(t, ln.(syscall.Conn))
				return ln
			})
			c := r.Dial(t)
			v := impltest.ExpectReply(t, c, impltest.Prefix, []byte("which sockets do you hold?"))
			m.CheckValues(t, v)
			held := sockets(t, v.PID)
			require.NotContains(t, held, listener, "the child %d holds the server's listening socket", v.PID)
			require.Len(t, held, 1, "the child %d holds its connection's socket and no other: %v", v.PID, held)
			impltest.ExpectEOF(t, c)
		})
	}
}

// socketInode returns the inode of the socket c, as /proc/PID/fd shows it.
func socketInode(t *testing.T, c syscall.Conn) uint64 {
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	var st syscall.Stat_t
	var serr error
	require.NoError(t, rc.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }))
	require.NoError(t, serr)
	return st.Ino
}

// sockets returns the inodes of the sockets process pid holds, its standard
// input, output and error aside (the test's own may be sockets).
func sockets(t *testing.T, pid int) []uint64 {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var inodes []uint64
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err != nil || n <= 2 {
			continue
		}
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		var ino uint64
		if _, err := fmt.Sscanf(link, "socket:[%d]", &ino); err == nil {
			inodes = append(inodes, ino)
		}
	}
	return inodes
}

// TestReclaimIdle tests, on TCP as on a Unix socket, that at MaxChildren a
// ready connection gets the child of a client that has sent nothing at
// all, and not the child of one that has sent and is quiet now, although
// that one is the older: the server must tell them apart on either kind
// of socket (TCP_INFO on TCP; what the child read on a Unix socket).
func TestReclaimIdle(t *testing.T) {
	pool := withPool(func(s *forking.Server) {
		s.MaxChildren, s.Spare, s.SpareTimeout, s.IdleGrace = 2, 2, time.Hour, 100*time.Millisecond
	})
	for _, m := range []impltest.Model{pool, pool.OverUnix()} {
		name := "tcp"
		if m.Unix {
			name = "unix"
		}
		t.Run(name, func(t *testing.T) {
			impltest.VerifyNone(t)
			r := impltest.Start(t, m, echo.Config{Protocol: echo.Stream, Prefix: impltest.Prefix})
			// Two spares, started and waiting for a connection: a child
			// still starting when it is handed one (the runtime reads a
			// file or two as it starts) would not be reclaimable on a
			// Unix socket, where what it read is the measure.
			impltest.ServedNow(t, r, m)
			impltest.Eventually(t, impltest.D, func() (bool, string) {
				kids := impltest.Children(t)
				for _, pid := range kids {
					if info, err := proc.Read(pid); err != nil || info.State != "S" {
						return false, fmt.Sprintf("child %d not waiting yet (%v)", pid, err)
					}
				}
				return len(kids) == 2, fmt.Sprintf("children %v: want 2 spares", kids)
			})
			// quiet sent once and is served; idle sends nothing.
			quiet := r.Dial(t)
			m.CheckValues(t, impltest.ExpectReply(t, quiet, impltest.Prefix, []byte("once")))
			// idle's child has it once its prefix comes: were it still
			// in the server, the next connection could take the spare.
			idle := r.Dial(t)
			m.CheckValues(t, impltest.ExpectPrefix(t, idle, impltest.Prefix))
			time.Sleep(200 * time.Millisecond) // past IdleGrace for both

			ready := r.Dial(t)
			require.NoError(t, ready.SetDeadline(time.Now().Add(impltest.D)))
			_, err := ready.Write([]byte("ready"))
			require.NoError(t, err)
			require.NoError(t, ready.CloseWrite())
			v, got := impltest.SplitReply(t, impltest.Prefix, impltest.ReadToEOF(t, ready, impltest.D))
			m.CheckValues(t, v)
			require.Equal(t, "ready", string(got))

			// The idle client's child was ended: EOF (or a reset), nothing
			// after the prefix.
			require.NoError(t, idle.SetReadDeadline(time.Now().Add(impltest.D)))
			rest, err := io.ReadAll(idle)
			if err != nil {
				require.ErrorIs(t, err, syscall.ECONNRESET, "the idle client's connection")
			}
			require.Empty(t, rest, "bytes after the idle client's prefix")
			// The quiet one still has its child.
			impltest.ExpectEcho(t, quiet, []byte("still served"))
			impltest.ExpectEOF(t, quiet)
		})
	}
}
