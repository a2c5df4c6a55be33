package proc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// TCP states (include/net/tcp_states.h), as sock_diag reports them and as
// bits of inet_diag_req_v2.idiag_states.
const (
	tcpEstablished = 1
	tcpSynRecv     = 3
	tcpFinWait1    = 4
	tcpFinWait2    = 5
	tcpCloseWait   = 8
	tcpLastAck     = 9
	tcpListen      = 10
	tcpClosing     = 11
)

// inet_diag bytecode (linux/inet_diag.h): each struct inet_diag_bc_op is
// {u8 code; u8 yes; u16 no}; a port comparison is followed by a second op
// whose "no" field holds the port. S_GE/S_LE exist on every kernel with
// sock_diag (S_EQ only since 4.16), so a port match is their conjunction.
const (
	bcSGE        = 2
	bcSLE        = 3
	bcDGE        = 4
	bcDLE        = 5
	reqBytecode  = 1 // INET_DIAG_REQ_BYTECODE, a request attribute
	diagMsgLen   = 72
	diagReqLen   = 56 // struct inet_diag_req_v2
	diagReqV1Len = 60 // struct inet_diag_req
	// TCPDIAG_GETSOCK asks with the original struct inet_diag_req, which
	// has no family: one dump then reports IPv4 and IPv6 sockets.
	tcpDiagGetSock = 18
	nlmsgHdrLen    = unix.SizeofNlMsghdr
	nlattrHdrLen   = 4
)

// diagQuery is one inet_diag_req_v2 for TCP.
type diagQuery struct {
	family uint8  // AF_INET or AF_INET6; AF_UNSPEC (dump only): both, by TCPDIAG_GETSOCK
	states uint32 // bit set of TCP states; 0 means every state
	// Exact lookup (dump false): the one socket with this 4-tuple.
	local, remote *net.TCPAddr
	// Dump (dump true): every socket in states, narrowed by the kernel to
	// those whose local port is sport and, when non-zero, whose remote port
	// is dport.
	dump         bool
	sport, dport int
}

// diagSock is the part of one struct inet_diag_msg we use.
type diagSock struct {
	state         uint8
	local, remote netip.AddrPort
	// For a LISTEN socket: accept-queue length and backlog maximum; for
	// others: bytes received unread and bytes sent unacknowledged.
	rqueue, wqueue uint32
	inode          uint64 // 0 until a process holds the socket (accept)
	// Socket memory (INET_DIAG_SKMEMINFO), exact lookups only: the send
	// buffer's size and what is queued in it.
	sndbuf, wmemQueued uint32
}

// diagBufs holds receive buffers: a dump answer arrives in skbs of up to
// 32 KiB, and a shorter buffer would truncate them.
var diagBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// sockDiag asks the kernel over NETLINK_SOCK_DIAG (as ss does) and returns
// the sockets of the answer; an exact lookup of a socket that does not
// exist returns none. Nothing here reads /proc/net/tcp, which lists every
// socket of the machine and takes tens of milliseconds once thousands sit
// in TIME_WAIT; a dump filtered by state and port makes the kernel skip
// the rest, and for LISTEN only it walks only the small listening hash.
func sockDiag(q diagQuery) ([]diagSock, error) {
	msg, err := q.message()
	if err != nil {
		return nil, err
	}
	var out []diagSock
	err = diagExchange(msg, q.dump, q.msgType(), diagMsgLen, func(data []byte) bool {
		s := parseDiagMsg(data)
		if !q.dump {
			// An exact lookup has one answer and no DONE. The kernel
			// falls back to a listener on the local port when no
			// connection matches: that is not the socket asked for.
			if s.state != tcpListen && int(s.remote.Port()) == q.remote.Port {
				out = append(out, s)
			}
			return true
		}
		out = append(out, s)
		return false
	})
	return out, err
}

// diagExchange sends the sock_diag request msg and hands each answer of
// type answer (at least minLen bytes) to take, until the kernel's DONE or
// take says it had the last (an exact lookup has one answer and no DONE).
// An exact lookup of a socket that does not exist (ENOENT) has no answer.
func diagExchange(msg []byte, dump bool, answer uint16, minLen int, take func(data []byte) (last bool)) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(time.Second)) // the kernel answers at once; never hang
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}

	bp := diagBufs.Get().(*[]byte)
	defer diagBufs.Put(bp)
	buf := *bp
	ne := binary.NativeEndian
	for {
		n, _, flags, _, err := unix.Recvmsg(fd, buf, nil, 0)
		if err == unix.EINTR {
			// With SO_RCVTIMEO set, a signal (the Go runtime's preemption)
			// interrupts the wait even under SA_RESTART: wait again.
			continue
		}
		if err != nil {
			return fmt.Errorf("sock_diag: %w", err)
		}
		if flags&unix.MSG_TRUNC != 0 {
			return fmt.Errorf("sock_diag: answer longer than %d bytes", len(buf))
		}
		b := buf[:n]
		for len(b) > 0 {
			l := int(ne.Uint32(b))
			if len(b) < nlmsgHdrLen || l < nlmsgHdrLen || l > len(b) {
				return fmt.Errorf("sock_diag: malformed answer (%d bytes)", len(b))
			}
			typ, data := ne.Uint16(b[4:]), b[nlmsgHdrLen:l]
			switch {
			case typ == unix.NLMSG_DONE:
				if len(data) >= 4 && int32(ne.Uint32(data)) < 0 {
					return fmt.Errorf("sock_diag: %w", unix.Errno(-int32(ne.Uint32(data))))
				}
				return nil
			case typ == unix.NLMSG_ERROR && len(data) >= 4:
				errno := unix.Errno(-int32(ne.Uint32(data)))
				if errno == 0 || errno == unix.ENOENT && !dump { // ENOENT: no such socket
					return nil
				}
				return fmt.Errorf("sock_diag: %w", errno)
			case typ == answer && len(data) >= minLen: // the answers have the request's type
				if take(data) {
					return nil
				}
			default:
				return fmt.Errorf("sock_diag: unexpected answer (type %d, %d bytes)", typ, len(data))
			}
			b = b[min(nlmAlign(l), len(b)):]
		}
	}
}

func (q diagQuery) msgType() uint16 {
	if q.family == unix.AF_UNSPEC {
		return tcpDiagGetSock
	}
	return unix.SOCK_DIAG_BY_FAMILY
}

func nlmAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// message builds struct nlmsghdr, struct inet_diag_req_v2 and, for a
// dump, the bytecode attribute that keeps only the wanted ports.
func (q diagQuery) message() ([]byte, error) {
	var bc []byte
	if q.dump {
		bc = portFilter(bcSGE, bcSLE, q.sport)
		if q.dport != 0 {
			bc = append(bc, portFilter(bcDGE, bcDLE, q.dport)...)
		}
		bc = bcFix(bc)
	}
	states := q.states
	if states == 0 {
		states = ^uint32(0)
	}
	reqLen := diagReqLen
	if q.family == unix.AF_UNSPEC {
		reqLen = diagReqV1Len
	}
	msg := make([]byte, nlmsgHdrLen+reqLen, nlmsgHdrLen+reqLen+nlattrHdrLen+len(bc))
	ne := binary.NativeEndian
	flags := uint16(unix.NLM_F_REQUEST)
	if q.dump {
		flags |= unix.NLM_F_DUMP
	}
	ne.PutUint16(msg[4:], q.msgType())
	ne.PutUint16(msg[6:], flags)
	ne.PutUint32(msg[8:], 1) // sequence number; the socket is ours alone
	req := msg[nlmsgHdrLen:]
	var id []byte // struct inet_diag_sockid: ports and addresses big-endian
	if q.family == unix.AF_UNSPEC {
		// struct inet_diag_req: family (AF_UNSPEC: ignored), lengths,
		// ext, id, states, dbs.
		id = req[4:]
		ne.PutUint32(req[52:], states)
	} else {
		// struct inet_diag_req_v2: family, protocol, ext, pad, states, id.
		req[0], req[1] = q.family, unix.IPPROTO_TCP
		if !q.dump {
			req[2] = 1 << (inetDiagSkMemInfo - 1) // idiag_ext: the socket's memory too
		}
		ne.PutUint32(req[4:], states)
		id = req[8:]
	}
	ne.PutUint32(id[40:], ^uint32(0)) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], ^uint32(0))
	if !q.dump {
		src, dst := q.local.IP.To16(), q.remote.IP.To16()
		if q.family == unix.AF_INET {
			src, dst = q.local.IP.To4(), q.remote.IP.To4()
		}
		if src == nil || dst == nil {
			return nil, fmt.Errorf("sock_diag: not IP addresses: %v, %v", q.local, q.remote)
		}
		binary.BigEndian.PutUint16(id[0:], uint16(q.local.Port))
		binary.BigEndian.PutUint16(id[2:], uint16(q.remote.Port))
		copy(id[4:20], src)
		copy(id[20:36], dst)
	}
	if bc != nil {
		attr := make([]byte, nlattrHdrLen)
		ne.PutUint16(attr[0:], uint16(nlattrHdrLen+len(bc)))
		ne.PutUint16(attr[2:], reqBytecode)
		msg = append(append(msg, attr...), bc...)
	}
	ne.PutUint32(msg[0:], uint32(len(msg)))
	return msg, nil
}

// portFilter is "port >= p && port <= p" in inet_diag bytecode; the "no"
// jumps are filled in by bcFix once the whole program is known.
func portFilter(ge, le uint8, port int) []byte {
	b := make([]byte, 16)
	for i, code := range []uint8{ge, le} {
		op := b[8*i:]
		op[0], op[1] = code, 8 // yes: the next comparison
		binary.NativeEndian.PutUint16(op[6:], uint16(port))
	}
	return b
}

// bcFix points every comparison's "no" just past the end of the program:
// the kernel accepts a socket only if the program ends exactly at its
// length, so jumping 4 bytes beyond it rejects (as ss's filters do).
func bcFix(bc []byte) []byte {
	for i := 0; i < len(bc); i += 8 {
		binary.NativeEndian.PutUint16(bc[i+2:], uint16(len(bc)-i+4))
	}
	return bc
}

func parseDiagMsg(data []byte) diagSock {
	ne := binary.NativeEndian
	s := diagSock{
		state:  data[1],
		rqueue: ne.Uint32(data[56:]),
		wqueue: ne.Uint32(data[60:]),
		inode:  uint64(ne.Uint32(data[68:])),
	}
	id := data[4:]
	sport, dport := binary.BigEndian.Uint16(id[0:]), binary.BigEndian.Uint16(id[2:])
	var src, dst netip.Addr
	if data[0] == unix.AF_INET {
		src, dst = netip.AddrFrom4([4]byte(id[4:8])), netip.AddrFrom4([4]byte(id[20:24]))
	} else {
		src, dst = netip.AddrFrom16([16]byte(id[4:20])), netip.AddrFrom16([16]byte(id[20:36]))
	}
	s.local, s.remote = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	// Attributes follow the message: struct nlattr, then its payload.
	for a := data[min(diagMsgLen, len(data)):]; len(a) >= nlattrHdrLen; {
		l := int(ne.Uint16(a))
		if l < nlattrHdrLen || l > len(a) {
			break
		}
		if ne.Uint16(a[2:]) == inetDiagSkMemInfo && l >= nlattrHdrLen+skMemInfoLen*4 {
			m := a[nlattrHdrLen:]
			s.sndbuf, s.wmemQueued = ne.Uint32(m[3*4:]), ne.Uint32(m[5*4:])
		}
		a = a[min(nlmAlign(l), len(a)):]
	}
	return s
}

// INET_DIAG_SKMEMINFO is an array of SK_MEMINFO_VARS u32s: RMEM_ALLOC,
// RCVBUF, WMEM_ALLOC, SNDBUF, FWD_ALLOC, WMEM_QUEUED, OPTMEM, BACKLOG
// (and DROPS on newer kernels).
const (
	inetDiagSkMemInfo = 7
	skMemInfoLen      = 8
)

// noCompat is set once TCPDIAG_GETSOCK has failed (a kernel that dropped
// it): from then on dumpBoth asks per family.
var noCompat atomic.Bool

// dumpBoth runs the dump q for IPv4 and IPv6 sockets. A dump walks a whole
// hash table, and for the established one that is most of its cost (about
// 1.4 ms for 2^18 buckets), so it asks once with the family-less request;
// otherwise once per family (a dual-stack "::" socket is AF_INET6 only, so
// nothing is reported twice either way).
func dumpBoth(q diagQuery) ([]diagSock, error) {
	if !noCompat.Load() {
		q.family = unix.AF_UNSPEC
		socks, err := sockDiag(q)
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EOPNOTSUPP) {
			return socks, err
		}
		noCompat.Store(true) // the request is unknown here
	}
	var out []diagSock
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		q.family = family
		socks, err := sockDiag(q)
		if family == unix.AF_INET6 && errors.Is(err, unix.ENOENT) {
			continue // kernel without IPv6
		}
		if err != nil {
			return nil, err
		}
		out = append(out, socks...)
	}
	return out, nil
}

// ReceiveQueue returns how many bytes the socket at local, connected to
// remote, has received and its process not read yet, and whether a process
// has accepted it (a socket still in the listen backlog has no inode);
// found is false when there is no such socket here (it closed, or lives in
// another network namespace).
//
// It asks the kernel for that one socket (an exact sock_diag lookup), so a
// caller can act within a few milliseconds of the read.
func ReceiveQueue(local, remote *net.TCPAddr) (queued int, accepted, found bool, err error) {
	s, found, err := lookup(local, remote)
	return int(s.rqueue), s.inode != 0, found, err
}

// Queues is what a connected socket holds, in bytes.
type Queues struct {
	Recv int // received, not read by its process
	Send int // written, not acknowledged by the peer (sent or not)
	// SendFull: what is queued fills the send buffer, so that a blocking
	// write waits (the kernel's sk_stream_memory_free).
	SendFull bool
}

// QueuesOf returns the queues of the socket at local, connected to remote,
// in one exact lookup; found is false when there is no such socket here.
func QueuesOf(local, remote *net.TCPAddr) (q Queues, found bool, err error) {
	s, found, err := lookup(local, remote)
	return Queues{Recv: int(s.rqueue), Send: int(s.wqueue), SendFull: found && s.sndbuf > 0 && s.wmemQueued >= s.sndbuf}, found, err
}

// lookup asks for the one socket with this 4-tuple, seen from local.
func lookup(local, remote *net.TCPAddr) (diagSock, bool, error) {
	family := uint8(unix.AF_INET)
	if local.IP.To4() == nil || remote.IP.To4() == nil {
		family = unix.AF_INET6
	}
	socks, err := sockDiag(diagQuery{family: family, local: local, remote: remote})
	if err != nil || len(socks) == 0 {
		return diagSock{}, false, err
	}
	return socks[0], true, nil
}

// SocketInode returns the inode of the socket with this 4-tuple, seen from
// local (the server's side of a connection, say): 0 while no process holds
// it (still in the backlog) or when there is no such socket.
func SocketInode(local, remote *net.TCPAddr) (uint64, error) {
	s, _, err := lookup(local, remote)
	return s.inode, err
}
