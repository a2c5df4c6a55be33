package proc

import "fmt"

// ListenOverflows returns the machine's (network namespace's) TcpExt
// counters ListenOverflows, connections dropped because an accept queue
// was full, and ListenDrops, every SYN or handshake-completing ACK a
// listener dropped (overflows included), from /proc/net/netstat. They are
// shared by every listener, so only a difference between two readings
// taken around one's own test means anything, and only on a quiet machine.
func ListenOverflows() (overflows, drops uint64, err error) {
	pfs, err := procFS()
	if err != nil {
		return 0, 0, err
	}
	self, err := pfs.Self()
	if err != nil {
		return 0, 0, err
	}
	ns, err := self.Netstat() // /proc/self/net/netstat is /proc/net/netstat
	if err != nil {
		return 0, 0, err
	}
	if ns.ListenOverflows == nil || ns.ListenDrops == nil {
		return 0, 0, fmt.Errorf("proc: no TcpExt ListenOverflows/ListenDrops in /proc/net/netstat")
	}
	// procfs reads the counters as float64: exact below 2^53.
	return uint64(*ns.ListenOverflows), uint64(*ns.ListenDrops), nil
}
