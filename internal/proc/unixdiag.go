package proc

import (
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"
)

// AF_UNIX sock_diag (linux/unix_diag.h), the questions diag.go asks of TCP
// asked of Unix-domain stream sockets. A Unix socket has no port: a
// listener is found by the inode of the socket file its path names
// (UNIX_DIAG_VFS), a connection's server side as the peer of the client's
// socket (UNIX_DIAG_PEER), whose inode is 0 until a process accepts it
// (the kernel creates it with no struct socket; accept(2) grafts one).
const (
	udiagShowName    = 0x01
	udiagShowVFS     = 0x02
	udiagShowPeer    = 0x04
	udiagShowRQLen   = 0x10
	udiagShowMemInfo = 0x20

	unixDiagName    = 0
	unixDiagVFS     = 1
	unixDiagPeer    = 2
	unixDiagRQLen   = 4
	unixDiagMemInfo = 5
	unixDiagShut    = 6

	unixDiagReqLen = 24 // struct unix_diag_req
	unixDiagMsgLen = 16 // struct unix_diag_msg
)

// UnixSocket is one AF_UNIX socket as sock_diag shows it.
type UnixSocket struct {
	Inode uint64 // the socket's inode: 0 for a connection no process has accepted
	Type  uint8  // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
	State uint8  // TCP_LISTEN (10) or TCP_ESTABLISHED (1), as for TCP
	// Path is the address it is bound to (an accepted socket carries its
	// listener's); "" when unbound. Abstract names begin with "@".
	Path string
	// FileInode is the inode of the socket file a bound socket created
	// (UNIX_DIAG_VFS); 0 for an unbound or abstract one.
	FileInode uint64
	// Peer is the inode of the socket at the other end (0: none, or not
	// accepted yet).
	Peer uint64
	// For a listener: Queue connections wait to be accepted, at most
	// Backlog (sk_max_ack_backlog: listen(2)'s backlog capped by
	// net.core.somaxconn; the kernel queues Backlog + 1). For a
	// connection: Recv bytes received and not read by its process, and
	// WMem bytes of what it wrote that its peer has not read
	// (sk_wmem_alloc, as unix_outq_len counts it).
	Queue, Backlog int
	Recv, WMem     int
	// SndBuf is the socket's send buffer (SK_MEMINFO_SNDBUF): a write
	// waits while WMem is at least SndBuf (sock_alloc_send_pskb), the
	// only backpressure of a Unix stream socket (the receiver's buffer
	// size plays no part).
	SndBuf int
	// Shutdown is sk_shutdown: RCV_SHUTDOWN (1) once the peer will send
	// nothing more (it shut down its writing side, or closed).
	Shutdown uint8
}

// SendFull reports whether a blocking write on the socket waits now.
func (s UnixSocket) SendFull() bool { return s.SndBuf > 0 && s.WMem >= s.SndBuf }

// unixDiag sends one unix_diag_req: a dump of the sockets in states
// (ino 0), or the one socket with inode ino.
func unixDiag(states uint32, ino uint64, show uint32) ([]UnixSocket, error) {
	ne := binary.NativeEndian
	dump := ino == 0
	msg := make([]byte, nlmsgHdrLen+unixDiagReqLen)
	flags := uint16(unix.NLM_F_REQUEST)
	if dump {
		flags |= unix.NLM_F_DUMP
	}
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(msg[6:], flags)
	ne.PutUint32(msg[8:], 1)
	req := msg[nlmsgHdrLen:]
	req[0] = unix.AF_UNIX
	ne.PutUint32(req[4:], states)
	ne.PutUint32(req[8:], uint32(ino))
	ne.PutUint32(req[12:], show)
	ne.PutUint32(req[16:], ^uint32(0)) // no cookie
	ne.PutUint32(req[20:], ^uint32(0))

	var out []UnixSocket
	err := diagExchange(msg, dump, unix.SOCK_DIAG_BY_FAMILY, unixDiagMsgLen, func(data []byte) bool {
		out = append(out, parseUnixDiag(data))
		return !dump
	})
	return out, err
}

func parseUnixDiag(data []byte) UnixSocket {
	ne := binary.NativeEndian
	s := UnixSocket{Type: data[1], State: data[2], Inode: uint64(ne.Uint32(data[4:]))}
	for a := data[unixDiagMsgLen:]; len(a) >= nlattrHdrLen; {
		l := int(ne.Uint16(a))
		if l < nlattrHdrLen || l > len(a) {
			break
		}
		v := a[nlattrHdrLen:l]
		switch ne.Uint16(a[2:]) {
		case unixDiagName:
			name := v
			if len(name) > 0 && name[0] == 0 {
				s.Path = "@" + string(name[1:])
			} else {
				if i := indexByte(name, 0); i >= 0 {
					name = name[:i]
				}
				s.Path = string(name)
			}
		case unixDiagVFS:
			if len(v) >= 8 {
				s.FileInode = uint64(ne.Uint32(v))
			}
		case unixDiagPeer:
			if len(v) >= 4 {
				s.Peer = uint64(ne.Uint32(v))
			}
		case unixDiagRQLen:
			if len(v) >= 8 {
				r, w := int(ne.Uint32(v)), int(ne.Uint32(v[4:]))
				if s.State == tcpListen {
					s.Queue, s.Backlog = r, w
				} else {
					s.Recv, s.WMem = r, w
				}
			}
		case unixDiagShut:
			if len(v) >= 1 {
				s.Shutdown = v[0]
			}
		case unixDiagMemInfo:
			if len(v) >= (unix.SK_MEMINFO_SNDBUF+1)*4 {
				s.SndBuf = int(ne.Uint32(v[unix.SK_MEMINFO_SNDBUF*4:]))
				// sk_wmem_alloc as the allocation saw it (RQLEN's wqueue is
				// the same counter; this one is exact for a listener too).
				s.WMem = int(ne.Uint32(v[unix.SK_MEMINFO_WMEM_ALLOC*4:]))
			}
		}
		a = a[min(nlmAlign(l), len(a)):]
	}
	return s
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// UnixListeners returns the Unix stream listeners a connect(2) to path
// reaches: those bound to the socket file path names now (matched by its
// inode, so a stale listener whose file was removed or replaced is not
// one). None when there is no such file: a connect would fail with
// ENOENT.
func UnixListeners(path string) ([]UnixSocket, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if os.IsNotExist(err) || err == unix.ENOENT || err == unix.ENOTDIR {
			return nil, nil
		}
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, nil
	}
	socks, err := unixDiag(1<<tcpListen, 0, udiagShowName|udiagShowVFS|udiagShowRQLen)
	if err != nil {
		return nil, err
	}
	var out []UnixSocket
	for _, s := range socks {
		if s.State == tcpListen && s.FileInode == st.Ino && s.Type == unix.SOCK_STREAM {
			out = append(out, s)
		}
	}
	return out, nil
}

// UnixSocketByInode returns the socket with this inode, its peer, queues
// and memory; found is false when there is none (closed, or another
// network namespace).
func UnixSocketByInode(ino uint64) (s UnixSocket, found bool, err error) {
	if ino == 0 {
		return UnixSocket{}, false, nil
	}
	socks, err := unixDiag(^uint32(0), ino, udiagShowName|udiagShowPeer|udiagShowRQLen|udiagShowMemInfo)
	if err != nil || len(socks) == 0 {
		return UnixSocket{}, false, err
	}
	return socks[0], true, nil
}

// UnixServerSide returns the server's side of the Unix connection whose
// client socket is the descriptor fd of this process: found false when
// the kernel shows no peer; accepted false while it waits in the
// listener's queue (its inode is 0 until accept(2)).
func UnixServerSide(fd int) (s UnixSocket, accepted, found bool, err error) {
	s, _, accepted, found, err = UnixConnection(fd)
	return s, accepted, found, err
}

// UnixConnection is UnixServerSide with the client's own socket too (its
// Recv is what the server wrote that the client has not read).
func UnixConnection(fd int) (s, client UnixSocket, accepted, found bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return UnixSocket{}, UnixSocket{}, false, false, err
	}
	client, ok, err := UnixSocketByInode(st.Ino)
	if err != nil || !ok {
		return UnixSocket{}, client, false, false, err
	}
	if client.Peer == 0 {
		// A peer that no process accepted yet has no inode; one that
		// closed has none either, and then the client's own socket is
		// shut down for receiving (the kernel sets it as the peer goes).
		const rcvShutdown = 1
		if client.Shutdown&rcvShutdown != 0 {
			return UnixSocket{}, client, false, false, nil
		}
		return UnixSocket{}, client, false, true, nil
	}
	s, ok, err = UnixSocketByInode(client.Peer)
	if err != nil {
		return UnixSocket{}, client, false, false, err
	}
	if !ok {
		return UnixSocket{Inode: client.Peer}, client, true, false, nil
	}
	return s, client, true, true, nil
}

// UnixListenerPIDs returns the PIDs that hold a listener a connect(2) to
// path reaches (see UnixListeners and ListenerPIDs).
func UnixListenerPIDs(path string) ([]int, error) {
	ls, err := UnixListeners(path)
	if err != nil || len(ls) == 0 {
		return nil, err
	}
	inodes := make([]uint64, len(ls))
	for i, l := range ls {
		inodes[i] = l.Inode
	}
	return socketHolders(inodes)
}
