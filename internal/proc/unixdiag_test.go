package proc

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clientSide returns the server's side of the client connection c.
func clientSide(t *testing.T, c net.Conn) (UnixSocket, bool, bool) {
	t.Helper()
	rc, err := c.(*net.UnixConn).SyscallConn()
	require.NoError(t, err)
	var s UnixSocket
	var accepted, found bool
	var serr error
	require.NoError(t, rc.Control(func(fd uintptr) { s, accepted, found, serr = UnixServerSide(int(fd)) }))
	require.NoError(t, serr)
	return s, accepted, found
}

// TestUnixDiag asks sock_diag about a real Unix listener: found by its
// path, with its backlog and queue; a connection waiting in that queue has
// no inode until accepted, then its queues show what it holds; a path
// whose file is gone, or whose listener closed, has no listener.
func TestUnixDiag(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer ln.Close()

	ls, err := UnixListeners(path)
	require.NoError(t, err)
	require.Len(t, ls, 1)
	require.Equal(t, path, ls[0].Path)
	require.NotZero(t, ls[0].Inode)
	require.Positive(t, ls[0].Backlog, "the listen backlog")
	require.Zero(t, ls[0].Queue)
	pids, err := UnixListenerPIDs(path)
	require.NoError(t, err)
	require.Equal(t, []int{os.Getpid()}, pids)

	c, err := net.Dial("unix", path)
	require.NoError(t, err)
	defer c.Close()
	ls, _ = UnixListeners(path)
	require.Equal(t, 1, ls[0].Queue, "a connection waits to be accepted")
	_, accepted, found := clientSide(t, c)
	require.True(t, found)
	require.False(t, accepted, "not accepted yet: the server's side has no inode")

	sc, err := ln.Accept()
	require.NoError(t, err)
	_, err = c.Write(make([]byte, 1000))
	require.NoError(t, err)
	s, accepted, found := clientSide(t, c)
	require.True(t, found)
	require.True(t, accepted)
	require.NotZero(t, s.Inode)
	require.Equal(t, 1000, s.Recv, "written, not read by the server")
	require.True(t, Holds([]int{os.Getpid()}, s.Inode))
	require.Positive(t, s.SndBuf)
	require.False(t, s.SendFull())

	// The server writes to a client that never reads until a write
	// would block: then, and only then, its send buffer is full.
	sc.(*net.UnixConn).SetWriteBuffer(64 << 10)
	chunk := make([]byte, 4096)
	for {
		s, _, _ = clientSide(t, c)
		if s.SendFull() {
			break
		}
		require.NoError(t, sc.SetWriteDeadline(time.Now().Add(time.Second)))
		_, err := sc.Write(chunk)
		require.NoError(t, err, "a write blocked before the send buffer showed full: %+v", s)
	}
	require.NoError(t, sc.SetWriteDeadline(time.Now().Add(50*time.Millisecond)))
	_, err = sc.Write(chunk)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the send buffer showed full, yet a write went through: %+v", s)

	// The server closes its side: the client's peer is gone.
	sc.Close()
	_, _, found = clientSide(t, c)
	require.False(t, found, "the server's side closed")

	// The file removed: nothing listens at the path (connect: ENOENT).
	require.NoError(t, os.Rename(path, path+".moved"))
	ls, err = UnixListeners(path)
	require.NoError(t, err)
	require.Empty(t, ls)
	ls, _ = UnixListeners(path + ".moved")
	require.Len(t, ls, 1, "the listener follows its file")
	// The listener closed, its file left: nothing listens (ECONNREFUSED).
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ino := ls[0].Inode
	ln.Close()
	ls, err = UnixListeners(path + ".moved")
	require.NoError(t, err)
	require.Empty(t, ls)
	pids, _ = UnixListenerPIDs(path + ".moved")
	require.False(t, slices.Contains(pids, os.Getpid()))
	_, found, err = UnixSocketByInode(ino)
	require.NoError(t, err)
	require.False(t, found)
}
