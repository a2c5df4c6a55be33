package proc

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// Every socket question here is a sock_diag request (see sockDiag): one
// reading of /proc/net/tcp{,6} lists every socket of the machine, too slow
// to poll once thousands sit in TIME_WAIT. Like those files, the answers
// describe the caller's network namespace.

// Listener is one TCP LISTEN socket.
type Listener struct {
	Inode uint64
	// Queue is the length of the accept queue: connections the kernel has
	// completed and no process has accepted yet. Backlog is its maximum,
	// the backlog given to listen(2) as capped by net.core.somaxconn.
	Queue, Backlog int
	Addr           netip.AddrPort
}

// Listeners returns every TCP LISTEN socket on port, any local address,
// IPv4 then IPv6 (a dual-stack "::" listener is IPv6 only). Asking for the
// LISTEN state alone lets the kernel walk only its listening hash.
func Listeners(port int) ([]Listener, error) {
	socks, err := dumpBoth(diagQuery{states: 1 << tcpListen, dump: true, sport: port})
	if err != nil {
		return nil, err
	}
	out := make([]Listener, 0, len(socks))
	for _, s := range socks {
		if s.state == tcpListen && s.local.Port() == uint16(port) {
			out = append(out, Listener{Inode: s.inode, Queue: int(s.rqueue), Backlog: int(s.wqueue), Addr: s.local})
		}
	}
	return out, nil
}

// ListenerInodes returns the socket inodes of every TCP LISTEN socket on
// port, any local address, sorted.
func ListenerInodes(port int) ([]uint64, error) {
	ls, err := Listeners(port)
	if err != nil {
		return nil, err
	}
	set := map[uint64]bool{}
	for _, l := range ls {
		set[l.Inode] = true
	}
	return sortedKeys(set), nil
}

// IsListening reports whether any TCP LISTEN socket on port exists.
func IsListening(port int) (bool, error) {
	ls, err := Listeners(port)
	return len(ls) > 0, err
}

// ListenerPIDs returns the PIDs that hold a TCP LISTEN socket on port,
// sorted and deduplicated. Several processes can share one listening inode
// (e.g. forked children that inherited the listener) and sockets carry no
// owner, so every /proc/*/fd is searched for "socket:[inode]". Processes
// whose fds cannot be read (vanished, or not permitted) are skipped.
func ListenerPIDs(port int) ([]int, error) {
	inodes, err := ListenerInodes(port)
	if err != nil || len(inodes) == 0 {
		return nil, err
	}
	return socketHolders(inodes)
}

// socketHolders returns the processes with a descriptor on any of the
// socket inodes, sorted. It reads each fd link with readlinkat on the
// process's fd directory into one buffer: no path or string per fd.
func socketHolders(inodes []uint64) ([]int, error) {
	want := make([][]byte, len(inodes))
	for i, ino := range inodes {
		want[i] = []byte("socket:[" + strconv.FormatUint(ino, 10) + "]")
	}
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	var pids []int
	link := make([]byte, 64)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue // not a process
		}
		if holds(pid, want, link) {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// holds reports whether pid has a descriptor whose link is one of want.
func holds(pid int, want [][]byte, link []byte) bool {
	dfd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false // gone, or not ours to read
	}
	dir := os.NewFile(uintptr(dfd), "fd") // owns dfd from here
	defer dir.Close()
	fds, err := dir.Readdirnames(-1)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		n, err := unix.Readlinkat(dfd, fd, link)
		if err != nil || n < len("socket:[") || !bytes.HasPrefix(link[:n], []byte("socket:[")) {
			continue
		}
		for _, w := range want {
			if bytes.Equal(link[:n], w) {
				return true
			}
		}
	}
	return false
}

// acceptedStates are the states of a server-side socket a process can hold
// after accept(2): SYN_RECV (a TCP Fast Open child can be accepted before
// the handshake completes), ESTABLISHED, and the closing states reached
// while the descriptor is still open (the peer closed: CLOSE_WAIT, then
// LAST_ACK after our shutdown; we shut down first: FIN_WAIT1/2, CLOSING).
// TIME_WAIT and LISTEN are left out: a TIME_WAIT socket has no inode, and
// leaving it out spares the kernel from reporting thousands of them.
const acceptedStates = 1<<tcpSynRecv | 1<<tcpEstablished | 1<<tcpFinWait1 | 1<<tcpFinWait2 |
	1<<tcpCloseWait | 1<<tcpLastAck | 1<<tcpClosing

// accepted asks for the sockets with local port serverPort (and remote
// port clientPort unless 0) in acceptedStates that a process holds: a
// connection still in the listen backlog has no socket inode yet; accept(2)
// gives it one.
func accepted(serverPort, clientPort int) (map[int]bool, error) {
	socks, err := dumpBoth(diagQuery{states: acceptedStates, dump: true, sport: serverPort, dport: clientPort})
	if err != nil {
		return nil, err
	}
	ports := map[int]bool{}
	for _, s := range socks {
		if s.inode != 0 && s.local.Port() == uint16(serverPort) {
			ports[int(s.remote.Port())] = true
		}
	}
	return ports, nil
}

// Accepted reports whether the server side of the TCP connection from
// clientPort to serverPort has been accepted by some process (see
// accepted). It first looks the connection up exactly, as it would be over
// IPv4 or IPv6 loopback, where the harness connects; when there is such a
// connection it is the answer, at the cost of one or two lookups. Only
// otherwise does it dump what is on the two ports, a walk of the kernel's
// whole established hash (a millisecond or more).
func Accepted(serverPort, clientPort int) (bool, error) {
	for _, ip := range []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback} {
		server, client := &net.TCPAddr{IP: ip, Port: serverPort}, &net.TCPAddr{IP: ip, Port: clientPort}
		_, ok, found, err := ReceiveQueue(server, client)
		if err != nil {
			return false, err
		}
		if found {
			return ok, nil
		}
	}
	ports, err := accepted(serverPort, clientPort)
	return ports[clientPort], err
}

// AcceptedPorts returns the client ports of every connection to serverPort
// that a process has accepted and still holds (see acceptedStates).
func AcceptedPorts(serverPort int) (map[int]bool, error) {
	return accepted(serverPort, 0)
}

// Holds reports whether any of pids has a descriptor on the socket inode:
// whether a server still holds a connection, after its client went away.
func Holds(pids []int, inode uint64) bool {
	want := [][]byte{[]byte("socket:[" + strconv.FormatUint(inode, 10) + "]")}
	link := make([]byte, 64)
	for _, pid := range pids {
		if holds(pid, want, link) {
			return true
		}
	}
	return false
}

// HoldersOf returns the processes with a descriptor on any of the socket
// inodes, sorted (see ListenerPIDs).
func HoldersOf(inodes []uint64) ([]int, error) { return socketHolders(inodes) }
