package proc

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestReceiveQueue follows the server side of one connection from the
// listen backlog to an empty receive queue, over IPv4 and IPv6 loopback.
func TestReceiveQueue(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			addr := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network]
			ln, err := net.Listen(network, addr)
			if network == "tcp6" && err != nil {
				t.Logf("no IPv6 loopback here (%v): nothing to check over IPv6", err)
				return
			}
			require.NoError(t, err)
			defer ln.Close()
			c, err := net.DialTimeout(network, ln.Addr().String(), 5*time.Second)
			require.NoError(t, err)
			defer c.Close()
			server, client := c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr)

			state := func() (int, bool, bool) {
				q, accepted, found, err := ReceiveQueue(server, client)
				require.NoError(t, err)
				return q, accepted, found
			}
			_, accepted, found := state()
			require.True(t, found, "the server side of a connection in the listen backlog")
			require.False(t, accepted, "not accepted yet")

			require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
			_, err = c.Write([]byte("hello"))
			require.NoError(t, err)
			require.Eventually(t, func() bool { q, _, _ := state(); return q == 5 }, 5*time.Second, time.Millisecond, "5 bytes queued unread")

			s, err := ln.Accept()
			require.NoError(t, err)
			defer s.Close()
			q, accepted, _ := state()
			require.True(t, accepted)
			require.Equal(t, 5, q, "accepting reads nothing")
			require.NoError(t, s.SetDeadline(time.Now().Add(5*time.Second)))
			buf := make([]byte, 5)
			_, err = s.Read(buf)
			require.NoError(t, err)
			t0 := time.Now()
			q, _, _ = state()
			t.Logf("one lookup: %v", time.Since(t0))
			require.Zero(t, q, "read")

			_, _, found, err = ReceiveQueue(&net.TCPAddr{IP: server.IP, Port: 1}, client)
			require.NoError(t, err)
			require.False(t, found, "no such socket")
		})
	}
}

// TestQueuesSendFull tests that a socket whose peer never reads shows a
// full send buffer once a write would block (EAGAIN), and not before.
func TestQueuesSendFull(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	s, err := ln.Accept() // the peer: it never reads
	require.NoError(t, err)
	defer s.Close()
	local, remote := c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr)

	q, found, err := QueuesOf(local, remote)
	require.NoError(t, err)
	require.True(t, found)
	require.False(t, q.SendFull, "nothing written yet")

	rc, err := c.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	chunk := make([]byte, 64<<10)
	refused := false
	for sent := 0; sent < 256<<20 && !refused; {
		var n int
		var werr error
		require.NoError(t, rc.Write(func(fd uintptr) bool { n, werr = unix.Write(int(fd), chunk); return true }))
		refused = werr == unix.EAGAIN
		if !refused {
			require.NoError(t, werr)
			sent += n
		}
	}
	require.True(t, refused, "the kernel refused more once the peer's buffers were full")
	q, _, err = QueuesOf(local, remote)
	require.NoError(t, err)
	require.True(t, q.SendFull, "a write would block: the send buffer is full")
	require.Positive(t, q.Send, "what the peer has not acknowledged")
}
