package proc

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// listen opens a TCP listener on addr and closes it when the test ends.
func listen(t testing.TB, network, addr string) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

func dial(t testing.TB, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), waitFor)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestListenersIPv4(t *testing.T) {
	ln, port := listen(t, "tcp4", "127.0.0.1:0")
	_, other := listen(t, "tcp4", "127.0.0.1:0")
	ls, err := Listeners(port)
	require.NoError(t, err)
	require.Len(t, ls, 1)
	require.Equal(t, netip.MustParseAddrPort(ln.Addr().String()), ls[0].Addr)
	require.NotZero(t, ls[0].Inode)
	require.Zero(t, ls[0].Queue)
	inodes, err := ListenerInodes(port)
	require.NoError(t, err)
	require.Equal(t, []uint64{ls[0].Inode}, inodes)

	// The port is matched by the kernel's bytecode filter, not only here.
	socks, err := sockDiag(diagQuery{family: unix.AF_INET, states: 1 << tcpListen, dump: true, sport: port})
	require.NoError(t, err)
	require.Len(t, socks, 1)
	ls, err = Listeners(other)
	require.NoError(t, err)
	require.Len(t, ls, 1)
	require.NotEqual(t, inodes[0], ls[0].Inode)
}

func TestListenersIPv6(t *testing.T) {
	for _, addr := range []string{"[::1]:0", "[::]:0"} {
		t.Run(addr, func(t *testing.T) {
			ln, err := net.Listen("tcp6", addr)
			if err != nil {
				t.Skipf("no IPv6 here: %v", err)
			}
			t.Cleanup(func() { _ = ln.Close() })
			port := ln.Addr().(*net.TCPAddr).Port
			ls, err := Listeners(port)
			require.NoError(t, err)
			require.Len(t, ls, 1)
			require.Equal(t, netip.MustParseAddrPort(ln.Addr().String()), ls[0].Addr)
		})
	}
	// A dual-stack listener (":0" for "tcp") is one IPv6 socket that also
	// takes IPv4 connections: reported once.
	ln, port := listen(t, "tcp", ":0")
	ls, err := Listeners(port)
	require.NoError(t, err)
	require.Len(t, ls, 1)
	require.True(t, ls[0].Addr.Addr().IsUnspecified())
	c := dial(t, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	s, err := ln.Accept()
	require.NoError(t, err)
	defer s.Close()
	cport := c.LocalAddr().(*net.TCPAddr).Port
	ports, err := AcceptedPorts(port)
	require.NoError(t, err)
	require.Equal(t, map[int]bool{cport: true}, ports)
	ok, err := Accepted(port, cport)
	require.NoError(t, err)
	require.True(t, ok)
}

func TestListenersClosed(t *testing.T) {
	ln, port := listen(t, "tcp", "127.0.0.1:0")
	require.NoError(t, ln.Close())
	ls, err := Listeners(port)
	require.NoError(t, err)
	require.Empty(t, ls)
	inodes, err := ListenerInodes(port)
	require.NoError(t, err)
	require.Empty(t, inodes)
}

// TestListenerQueue builds the listener with syscalls, as net.Listen always
// asks for somaxconn, to check Backlog is listen(2)'s argument and Queue
// the connections no one has accepted yet.
func TestListenerQueue(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Close(fd) })
	require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.Listen(fd, 7))
	sa, err := unix.Getsockname(fd)
	require.NoError(t, err)
	port := sa.(*unix.SockaddrInet4).Port
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}

	queue := func() int {
		ls, err := Listeners(port)
		require.NoError(t, err)
		require.Len(t, ls, 1)
		require.Equal(t, 7, ls[0].Backlog)
		return ls[0].Queue
	}
	require.Zero(t, queue())
	for range 3 {
		dial(t, addr)
	}
	// connect returns once the client has sent the last ACK; the listener
	// queues the connection when that ACK arrives.
	require.Eventually(t, func() bool { return queue() == 3 }, waitFor, tick)
	nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	require.NoError(t, err)
	require.NoError(t, unix.Close(nfd))
	require.Equal(t, 2, queue(), "one accepted")
}

func TestAcceptedPorts(t *testing.T) {
	ln, port := listen(t, "tcp4", "127.0.0.1:0")
	c1, c2 := dial(t, ln.Addr()), dial(t, ln.Addr())
	p1, p2 := c1.LocalAddr().(*net.TCPAddr).Port, c2.LocalAddr().(*net.TCPAddr).Port
	// An unrelated accepted connection on another port must not show.
	oln, _ := listen(t, "tcp4", "127.0.0.1:0")
	dial(t, oln.Addr())
	os, err := oln.Accept()
	require.NoError(t, err)
	defer os.Close()

	ports, err := AcceptedPorts(port)
	require.NoError(t, err)
	require.Empty(t, ports, "both in the backlog")

	s1, err := ln.Accept()
	require.NoError(t, err)
	require.Equal(t, c1.LocalAddr().String(), s1.RemoteAddr().String(), "accept order")
	ports, err = AcceptedPorts(port)
	require.NoError(t, err)
	require.Equal(t, map[int]bool{p1: true}, ports)
	for p, want := range map[int]bool{p1: true, p2: false} {
		ok, err := Accepted(port, p)
		require.NoError(t, err)
		require.Equal(t, want, ok, "client port %d", p)
	}
	require.Equal(t, scanAcceptedPorts(t, port), ports, "the same answer as /proc/net/tcp")
	// The kernel filters on both ports: one socket, whether accepted or not.
	for _, p := range []int{p1, p2} {
		socks, err := sockDiag(diagQuery{family: unix.AF_INET, states: acceptedStates, dump: true, sport: port, dport: p})
		require.NoError(t, err)
		require.Len(t, socks, 1)
		require.Equal(t, uint16(p), socks[0].remote.Port())
	}

	// The peer closed, the server has not: CLOSE_WAIT still counts.
	require.NoError(t, c1.Close())
	require.NoError(t, s1.SetReadDeadline(time.Now().Add(waitFor)))
	_, err = s1.Read(make([]byte, 1))
	require.Error(t, err) // EOF: the FIN has arrived
	ok, err := Accepted(port, p1)
	require.NoError(t, err)
	require.True(t, ok, "CLOSE_WAIT")
	// Once the server closes it too, no process holds the socket.
	require.NoError(t, s1.Close())
	ok, err = Accepted(port, p1)
	require.NoError(t, err)
	require.False(t, ok, "closed")
}

// TestSockDiagMatchesScan compares the answers with a reading of
// /proc/net/tcp{,6}, the way they were computed before.
func TestSockDiagMatchesScan(t *testing.T) {
	_, port := listen(t, "tcp", ":0")
	_, port4 := listen(t, "tcp4", "127.0.0.1:0")
	for _, p := range []int{port, port4} {
		inodes, err := ListenerInodes(p)
		require.NoError(t, err)
		require.Equal(t, scanListenerInodes(t, p), inodes)
	}
}

func TestListenOverflows(t *testing.T) {
	// listen(2) with backlog 0 queues one connection; the next SYN is
	// dropped as an overflow.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Close(fd) })
	require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.Listen(fd, 0))
	sa, err := unix.Getsockname(fd)
	require.NoError(t, err)
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port}
	dial(t, addr)
	require.Eventually(t, func() bool {
		ls, err := Listeners(addr.Port)
		return err == nil && len(ls) == 1 && ls[0].Queue == 1
	}, waitFor, tick)

	over0, drops0, err := ListenOverflows()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { // retries its SYN until cancelled
		defer close(done)
		var d net.Dialer
		if c, err := d.DialContext(ctx, "tcp", addr.String()); err == nil {
			c.Close()
		}
	}()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool {
		over, drops, err := ListenOverflows()
		require.NoError(t, err)
		require.GreaterOrEqual(t, drops, over, "every overflow is a drop")
		return over > over0 && drops > drops0
	}, waitFor, tick)
}

// scanListenerInodes and scanAcceptedPorts are the former implementation:
// every line of /proc/net/tcp{,6}.
func scanListenerInodes(t testing.TB, port int) []uint64 {
	set := map[uint64]bool{}
	for _, l := range scanTCP(t) {
		if l.St == tcpListen && l.LocalPort == uint64(port) {
			set[l.Inode] = true
		}
	}
	return sortedKeys(set)
}

func scanAcceptedPorts(t testing.TB, port int) map[int]bool {
	ports := map[int]bool{}
	for _, l := range scanTCP(t) {
		if l.St != tcpListen && l.LocalPort == uint64(port) && l.Inode != 0 {
			ports[int(l.RemPort)] = true
		}
	}
	return ports
}

func scanTCP(t testing.TB) procfs.NetTCP {
	pfs, err := procFS()
	require.NoError(t, err)
	var all procfs.NetTCP
	for _, read := range []func() (procfs.NetTCP, error){pfs.NetTCP, pfs.NetTCP6} {
		lines, err := read()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		all = append(all, lines...)
	}
	return all
}

// timeWaits leaves n client sockets in TIME_WAIT (for 60 s): the client
// closes first, then the server.
func timeWaits(b *testing.B, n int) {
	ln, _ := listen(b, "tcp4", "127.0.0.1:0")
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(b, err)
		s, err := ln.Accept()
		require.NoError(b, err)
		require.NoError(b, c.Close())
		_, err = s.Read(make([]byte, 1)) // EOF once the client's FIN is in
		require.Error(b, err)
		require.NoError(b, s.Close())
	}
	tw := 0
	for _, l := range scanTCP(b) {
		if l.St == 6 {
			tw++
		}
	}
	b.Logf("%d sockets in TIME_WAIT", tw)
}

// BenchmarkListener compares the former /proc/net/tcp scan and sock_diag
// with 2,000 sockets in TIME_WAIT: go test -bench Listener -run '^$'.
func BenchmarkListener(b *testing.B) {
	timeWaits(b, 2000)
	ln, port := listen(b, "tcp", ":0")
	c := dial(b, ln.Addr())
	s, err := ln.Accept()
	require.NoError(b, err)
	defer s.Close()
	cport := c.LocalAddr().(*net.TCPAddr).Port
	b.Run("scan/ListenerInodes", func(b *testing.B) {
		for b.Loop() {
			require.Len(b, scanListenerInodes(b, port), 1)
		}
	})
	b.Run("diag/ListenerInodes", func(b *testing.B) {
		for b.Loop() {
			inodes, err := ListenerInodes(port)
			require.NoError(b, err)
			require.Len(b, inodes, 1)
		}
	})
	b.Run("scan/AcceptedPorts", func(b *testing.B) {
		for b.Loop() {
			require.True(b, scanAcceptedPorts(b, port)[cport])
		}
	})
	b.Run("diag/AcceptedPorts", func(b *testing.B) {
		for b.Loop() {
			ports, err := AcceptedPorts(port)
			require.NoError(b, err)
			require.True(b, ports[cport])
		}
	})
	b.Run("diag/Accepted", func(b *testing.B) {
		for b.Loop() {
			ok, err := Accepted(port, cport)
			require.NoError(b, err)
			require.True(b, ok)
		}
	})
	b.Run("ListenerPIDs", func(b *testing.B) {
		for b.Loop() {
			pids, err := ListenerPIDs(port)
			require.NoError(b, err)
			require.True(b, slices.Contains(pids, os.Getpid()))
		}
	})
}

// TestAcceptedOtherAddress covers the dump Accepted falls back to when the
// connection is not over 127.0.0.1 or ::1.
func TestAcceptedOtherAddress(t *testing.T) {
	ln, port := listen(t, "tcp4", "127.0.0.2:0")
	c := dial(t, ln.Addr())
	cport := c.LocalAddr().(*net.TCPAddr).Port
	ok, err := Accepted(port, cport)
	require.NoError(t, err)
	require.False(t, ok)
	s, err := ln.Accept()
	require.NoError(t, err)
	defer s.Close()
	ok, err = Accepted(port, cport)
	require.NoError(t, err)
	require.True(t, ok)
}

// TestDumpPerFamily repeats the answers with one dump per family, as on a
// kernel without the family-less TCPDIAG_GETSOCK request.
func TestDumpPerFamily(t *testing.T) {
	require.False(t, noCompat.Load(), "this kernel has TCPDIAG_GETSOCK")
	noCompat.Store(true)
	defer noCompat.Store(false)
	TestSockDiagMatchesScan(t)
	TestListenersIPv6(t)
	TestAcceptedOtherAddress(t)
}

// TestReceiveQueueNotListener: when no connection matches, the kernel's
// exact lookup answers with the listener on the port; that is "not found".
func TestReceiveQueueNotListener(t *testing.T) {
	_, port := listen(t, "tcp4", "127.0.0.1:0")
	ip := net.IPv4(127, 0, 0, 1)
	_, _, found, err := ReceiveQueue(&net.TCPAddr{IP: ip, Port: port}, &net.TCPAddr{IP: ip, Port: 1})
	require.NoError(t, err)
	require.False(t, found)
	ok, err := Accepted(port, 1)
	require.NoError(t, err)
	require.False(t, ok)
}
