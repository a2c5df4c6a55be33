package proc

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// tcpListen is the kernel's TCP_LISTEN state number ("0A" in /proc/net/tcp).
const tcpListen = 10

// ListenerInodes returns the socket inodes of every TCP LISTEN socket on
// port, from both /proc/net/tcp and /proc/net/tcp6 (a dual-stack ":0"
// listener appears only in tcp6), any local address, sorted. The files
// describe the caller's network namespace.
func ListenerInodes(port int) ([]uint64, error) {
	pfs, err := procFS()
	if err != nil {
		return nil, err
	}
	set := map[uint64]bool{}
	// NetTCP is marked deprecated in favour of netlink sock_diag, but the
	// text files are all we need and work without extra privileges.
	for _, read := range []func() (procfs.NetTCP, error){pfs.NetTCP, pfs.NetTCP6} {
		lines, err := read()
		if errors.Is(err, fs.ErrNotExist) {
			continue // kernel without IPv6
		}
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			if l.St == tcpListen && l.LocalPort == uint64(port) {
				set[l.Inode] = true
			}
		}
	}
	return sortedKeys(set), nil
}

// IsListening reports whether any TCP LISTEN socket on port exists.
func IsListening(port int) (bool, error) {
	inodes, err := ListenerInodes(port)
	return len(inodes) > 0, err
}

// ListenerPIDs returns the PIDs that hold a TCP LISTEN socket on port,
// sorted and deduplicated. Several processes can share one listening inode
// (e.g. forked children that inherited the listener), so every
// /proc/*/fd is scanned for "socket:[inode]". Processes whose fds cannot be
// read (vanished, or not permitted) are skipped.
func ListenerPIDs(port int) ([]int, error) {
	inodes, err := ListenerInodes(port)
	if err != nil || len(inodes) == 0 {
		return nil, err
	}
	want := map[string]bool{}
	for _, ino := range inodes {
		want["socket:["+strconv.FormatUint(ino, 10)+"]"] = true
	}
	pfs, err := procFS()
	if err != nil {
		return nil, err
	}
	all, err := pfs.AllProcs()
	if err != nil {
		return nil, err
	}
	set := map[int]bool{}
	for _, p := range all {
		targets, err := p.FileDescriptorTargets()
		if err != nil {
			continue
		}
		for _, t := range targets {
			if strings.HasPrefix(t, "socket:[") && want[t] {
				set[p.PID] = true
				break
			}
		}
	}
	return sortedKeys(set), nil
}

// Accepted reports whether the server side of the TCP connection from
// clientPort to serverPort has been accepted by some process. A connection
// still waiting in the listen backlog has no socket inode yet; accept(2)
// gives it one, so a non-zero inode means a process holds it.
func Accepted(serverPort, clientPort int) (bool, error) {
	ports, err := AcceptedPorts(serverPort)
	return ports[clientPort], err
}

// AcceptedPorts returns the client ports of every connection to serverPort
// that a process has accepted, from one reading of /proc/net/tcp{,6}.
func AcceptedPorts(serverPort int) (map[int]bool, error) {
	pfs, err := procFS()
	if err != nil {
		return nil, err
	}
	ports := map[int]bool{}
	for _, read := range []func() (procfs.NetTCP, error){pfs.NetTCP, pfs.NetTCP6} {
		lines, err := read()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			if l.St != tcpListen && l.LocalPort == uint64(serverPort) && l.Inode != 0 {
				ports[int(l.RemPort)] = true
			}
		}
	}
	return ports, nil
}
