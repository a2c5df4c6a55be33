package conformance

import (
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/echoconform/echoconform/internal/proc"
)

// TCP over loopback: a server is its port; the kernel's sockets are found
// by port and 4-tuple over sock_diag.
func init() { registerTransport(tcpTransport{}) }

type tcpTransport struct{}

func (tcpTransport) name() string           { return "tcp" }
func (tcpTransport) placeholders() []string { return []string{"{port}", "{addr}"} }
func (tcpTransport) noFile() string {
	return "a TCP server leaves no file behind: its port is released with its socket (SHUT-4)"
}

// parse takes HOST:PORT, PORT a number.
func (tcpTransport) parse(addr string) (endpoint, bool, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, false, nil
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil, false, nil // not a port: not a TCP address
	}
	return tcpEndpoint{addr: addr, host: host, port: port}, true, nil
}

func (tcpTransport) fresh() (endpoint, error) {
	port, err := choosePort()
	if err != nil {
		return nil, err
	}
	return tcpEndpoint{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), host: "127.0.0.1", port: port}, nil
}

func (tcpTransport) listenFresh() (endpoint, net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	return tcpEndpoint{addr: ln.Addr().String(), host: "127.0.0.1", port: ln.Addr().(*net.TCPAddr).Port}, ln, nil
}

type tcpEndpoint struct {
	addr, host string
	port       int
}

func (tcpEndpoint) transport() transport { return tcpTransport{} }
func (e tcpEndpoint) String() string     { return e.addr }

func (e tcpEndpoint) dial(d net.Dialer, _ deadlines) (net.Conn, error) { return d.Dial("tcp", e.addr) }

func (e tcpEndpoint) expand(arg string) string { return expandArgs([]string{arg}, e.port)[0] }
func (e tcpEndpoint) env() []string            { return []string{"PORT=" + strconv.Itoa(e.port)} }

// local reports whether the address is this machine's loopback, where
// sock_diag shows the server's sockets.
func (e tcpEndpoint) local() bool {
	ip := net.ParseIP(e.host)
	return e.host == "localhost" || (ip != nil && ip.IsLoopback())
}

func (e tcpEndpoint) listeners() ([]proc.Listener, error) { return proc.Listeners(e.port) }

func (e tcpEndpoint) accepted(cs []net.Conn) map[net.Conn]bool {
	out := map[net.Conn]bool{}
	if len(cs) == 1 {
		ok, _ := proc.Accepted(e.port, localPort(cs[0]))
		out[cs[0]] = ok
		return out
	}
	ports, _ := proc.AcceptedPorts(e.port)
	for _, c := range cs {
		out[c] = ports[localPort(c)]
	}
	return out
}

func localPort(c net.Conn) int { return c.LocalAddr().(*net.TCPAddr).Port }

func sides(c net.Conn) (server, client *net.TCPAddr) {
	return c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr)
}

func (tcpEndpoint) inode(c net.Conn) (uint64, error) { return proc.SocketInode(sides(c)) }

func (tcpEndpoint) recvQueue(c net.Conn) (int, bool, bool, error) { return proc.ReceiveQueue(sides(c)) }

func (tcpEndpoint) queues(c net.Conn, _ int) (proc.Queues, bool, error) {
	return proc.QueuesOf(sides(c))
}

func (tcpEndpoint) leftover() string { return "" }
func (tcpEndpoint) release()         {}
func (tcpEndpoint) owned() string    { return "" }

func (tcpEndpoint) refused() string {
	return "whenever the server accepts more slowly than they arrive, each client beyond it waits a second for a SYN retransmit"
}

// expandArgs puts the port into a command's arguments: "{port}" becomes
// PORT and "{addr}" becomes 127.0.0.1:PORT.
func expandArgs(argv []string, port int) []string {
	p := strconv.Itoa(port)
	r := strings.NewReplacer("{port}", p, "{addr}", net.JoinHostPort("127.0.0.1", p))
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = r.Replace(a)
	}
	return out
}

// issued are the ports freePort handed out lately: runs at once in one
// process (the zoo, a teacher's many servers) must not be given the same
// port, which the kernel offers again as soon as it is free.
var issued struct {
	sync.Mutex
	recent map[int]bool
	order  []int
}

// choosePort is freePort; a test makes it return a taken port.
var choosePort = freePort

// freePort returns a port on 127.0.0.1 that is free now and was not handed
// out among the last 4,096.
func freePort() (int, error) {
	issued.Lock()
	defer issued.Unlock()
	if issued.recent == nil {
		issued.recent = map[int]bool{}
	}
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		// Held open until the function returns: the next try gets
		// another port.
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		if issued.recent[port] {
			continue
		}
		issued.recent[port] = true
		issued.order = append(issued.order, port)
		if len(issued.order) > 4096 {
			delete(issued.recent, issued.order[0])
			issued.order = issued.order[1:]
		}
		return port, nil
	}
}
