package proc

import (
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// ReceiveQueue returns how many bytes the socket at local, connected to
// remote, has received and its process not read yet, and whether a process
// has accepted it (a socket still in the listen backlog has no inode);
// found is false when there is no such socket here (it closed, or lives in
// another network namespace).
//
// It asks the kernel for that one socket over netlink (sock_diag, as ss
// does), an exact lookup: reading /proc/net/tcp instead lists every socket
// of the machine, tens of milliseconds once thousands sit in TIME_WAIT,
// too slow for a caller that must act within a few milliseconds of the
// read.
func ReceiveQueue(local, remote *net.TCPAddr) (queued int, accepted, found bool, err error) {
	family, src, dst := uint8(unix.AF_INET), local.IP.To4(), remote.IP.To4()
	if src == nil || dst == nil {
		family, src, dst = unix.AF_INET6, local.IP.To16(), remote.IP.To16()
	}
	if src == nil || dst == nil {
		return 0, false, false, fmt.Errorf("sock_diag: not IP addresses: %v, %v", local, remote)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, false, false, fmt.Errorf("sock_diag: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(time.Second)) // the kernel answers at once; never hang
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return 0, false, false, fmt.Errorf("sock_diag: %w", err)
	}

	// struct nlmsghdr, then struct inet_diag_req_v2 (linux/inet_diag.h).
	const hdrLen, reqLen = unix.SizeofNlMsghdr, 56
	msg := make([]byte, hdrLen+reqLen)
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(msg[6:], unix.NLM_F_REQUEST) // one socket, not a dump
	req := msg[hdrLen:]
	req[0], req[1] = family, unix.IPPROTO_TCP
	ne.PutUint32(req[4:], ^uint32(0)) // every state
	id := req[8:]                     // struct inet_diag_sockid
	binary.BigEndian.PutUint16(id[0:], uint16(local.Port))
	binary.BigEndian.PutUint16(id[2:], uint16(remote.Port))
	copy(id[4:20], src)
	copy(id[20:36], dst)
	ne.PutUint32(id[40:], ^uint32(0)) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], ^uint32(0))
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, false, false, fmt.Errorf("sock_diag: %w", err)
	}

	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, false, false, fmt.Errorf("sock_diag: %w", err)
	}
	// One message: struct nlmsghdr and its payload.
	if n < hdrLen || int(ne.Uint32(buf)) > n || int(ne.Uint32(buf)) < hdrLen {
		return 0, false, false, fmt.Errorf("sock_diag: malformed answer (%d bytes)", n)
	}
	typ, data := ne.Uint16(buf[4:]), buf[hdrLen:ne.Uint32(buf)]
	switch {
	case typ == unix.NLMSG_ERROR && len(data) >= 4:
		if errno := unix.Errno(-int32(ne.Uint32(data))); errno != unix.ENOENT {
			return 0, false, false, fmt.Errorf("sock_diag: %w", errno)
		}
		return 0, false, false, nil
	case typ == unix.SOCK_DIAG_BY_FAMILY && len(data) >= 72:
		// struct inet_diag_msg: idiag_rqueue at 56, idiag_inode at 68.
		return int(ne.Uint32(data[56:])), ne.Uint32(data[68:]) != 0, true, nil
	}
	return 0, false, false, fmt.Errorf("sock_diag: unexpected answer (type %d, %d bytes)", typ, len(data))
}
