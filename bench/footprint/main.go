// Command footprint measures what an idle connection costs a server: it
// starts echoserver as a process of its own, opens N connections to it from
// client processes (a process holds at most 20,000 descriptors here, so the
// clients are spread over several, each a copy of this program), has each
// connection echo one byte so that the server has accepted and served it,
// and reads, before and with the N open:
//
//   - the server's RSS, threads and descriptors (/proc/PID/stat, fd);
//   - the kernel's socket memory: /proc/net/sockstat's TCP mem (pages of
//     socket buffers) and, where /proc/slabinfo is readable, the slab
//     objects of TCP sockets, their inodes, files and epoll items. Both ends
//     of every connection are on this machine, so these count two sockets a
//     connection; the server's share is about half.
//
// It prints the figures per connection, the eventloop's RSS per
// connection as a ratio to the threading reference's at a count both hold,
// and what they project for 100,000 connections.
//
//	go run ./bench/footprint -bin DIR [-event 19000] [-compare 4500] [-per 5000]
//
// DIR holds echoserver (see bench/run.sh). Every process it starts is
// ended and reaped; every wait is bounded.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/echoconform/echoconform/internal/load"
	"github.com/echoconform/echoconform/internal/proc"
)

// bound is the hang guard of every wait: a client's connections, a
// server's settling, a process's exit.
const bound = 2 * time.Minute

func main() {
	client := flag.Bool("client", false, "internal: be a client process holding -n connections to -addr")
	addr := flag.String("addr", "", "internal: the server, for -client")
	n := flag.Int("n", 0, "internal: connections, for -client")
	bin := flag.String("bin", "", "directory holding echoserver")
	event := flag.Int("event", 19000, "connections the eventloop reference holds")
	compare := flag.Int("compare", 4500, "connections both references hold, for the comparison (threading spends three descriptors a connection in its process)")
	per := flag.Int("per", 5000, "connections per client process")
	flag.Parse()
	if *client {
		if err := runClient(*addr, *n); err != nil {
			fmt.Fprintln(os.Stderr, "footprint client:", err)
			os.Exit(1)
		}
		return
	}
	if *bin == "" || *per < 1 {
		fmt.Fprintln(os.Stderr, "footprint: -bin DIR is required")
		os.Exit(2)
	}
	runs := []struct {
		model string
		n     int
	}{{"thread", *compare}, {"event", *compare}, {"event", *event}}
	var results []result
	for _, r := range runs {
		fmt.Fprintf(os.Stderr, "footprint: %s reference, %d idle connections\n", r.model, r.n)
		res, err := measure(filepath.Join(*bin, "echoserver"), r.model, r.n, *per)
		if err != nil {
			fmt.Fprintf(os.Stderr, "footprint: %s, %d connections: %v\n", r.model, r.n, err)
			os.Exit(1)
		}
		results = append(results, res)
	}
	report(os.Stdout, results)
}

// reading is one look at the server and the kernel.
type reading struct {
	rss              int64
	threads, fds     int
	sockMem          int64            // bytes: sockstat TCP mem pages
	slab             map[string]int64 // bytes of active objects, by cache
	tcpInuse, sockTW int
}

type result struct {
	model       string
	n           int
	before, now reading
}

var slabCaches = []string{"TCP", "sock_inode_cache", "filp", "eventpoll_epi", "dentry"}

func read(pid int) (reading, error) {
	info, err := proc.Read(pid)
	if err != nil {
		return reading{}, err
	}
	r := reading{rss: info.RSS, threads: info.Threads, fds: info.FDs, slab: map[string]int64{}}
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return r, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "TCP:" {
			continue
		}
		for i := 1; i+1 < len(f); i += 2 {
			v, _ := strconv.ParseInt(f[i+1], 10, 64)
			switch f[i] {
			case "mem":
				r.sockMem = v * int64(os.Getpagesize())
			case "inuse":
				r.tcpInuse = int(v)
			case "tw":
				r.sockTW = int(v)
			}
		}
	}
	if b, err := os.ReadFile("/proc/slabinfo"); err == nil { // root only
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 4 {
				continue
			}
			for _, c := range slabCaches {
				if f[0] == c {
					active, _ := strconv.ParseInt(f[1], 10, 64)
					size, _ := strconv.ParseInt(f[3], 10, 64)
					r.slab[c] = active * size
				}
			}
		}
	}
	return r, nil
}

// measure starts the server, reads it at rest, opens n connections from
// client processes, reads it again, and ends everything.
func measure(echoserver, model string, n, per int) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*bound)
	defer cancel()
	p, err := load.Launch(ctx, []string{echoserver, "-model", model, "-addr", "{addr}", "-grace", "1s"}, io.Discard, 10*time.Second)
	if err != nil {
		return result{}, err
	}
	defer func() { _ = p.Stop(5 * time.Second) }()
	// One client first: the server's first connection allocates what every
	// later one shares (the eventloop's loop, the runtime's poller).
	if err := runClients(ctx, p.Addr, 1, 1, func() {}); err != nil {
		return result{}, fmt.Errorf("warm-up: %w", err)
	}
	before, err := settled(p.PID, -1)
	if err != nil {
		return result{}, err
	}
	res := result{model: model, n: n, before: before}
	var rerr error
	err = runClients(ctx, p.Addr, n, per, func() {
		// Every connection is open and has been served: read the server
		// once its descriptors show them all.
		res.now, rerr = settled(p.PID, before.fds+n)
	})
	if err == nil {
		err = rerr
	}
	if err == nil && res.now.rss == 0 {
		err = errors.New("no reading with the connections open")
	}
	return res, err
}

// settled reads the server once two readings a few milliseconds apart agree
// on its descriptors (and, when fds >= 0, once it holds at least fds).
func settled(pid, fds int) (reading, error) {
	deadline := time.Now().Add(bound)
	var last reading
	for time.Now().Before(deadline) {
		r, err := read(pid)
		if err != nil {
			return r, err
		}
		if r.fds == last.fds && (fds < 0 || r.fds >= fds) {
			return r, nil
		}
		last = r
		time.Sleep(20 * time.Millisecond) // polling /proc; nothing to wait on
	}
	return last, fmt.Errorf("the server's descriptors did not settle (%d, want at least %d) within %v", last.fds, fds, bound)
}

// runClients starts client processes holding n connections in all, at most
// per each, calls during once all are ready, then ends them.
func runClients(ctx context.Context, addr string, n, per int, during func()) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	type client struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		ready chan error
	}
	var clients []*client
	defer func() {
		for _, c := range clients {
			_ = c.stdin.Close() // the client closes its connections and exits
		}
		for _, c := range clients {
			_ = c.cmd.Wait() // WaitDelay kills one that does not exit
		}
	}()
	for left := n; left > 0; left -= per {
		k := min(per, left)
		cmd := exec.CommandContext(ctx, self, "-client", "-addr", addr, "-n", strconv.Itoa(k))
		cmd.Stderr = os.Stderr
		cmd.WaitDelay = 10 * time.Second
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		c := &client{cmd: cmd, stdin: stdin, ready: make(chan error, 1)}
		clients = append(clients, c)
		go func() {
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err == nil && !strings.HasPrefix(line, "ready") {
				err = fmt.Errorf("client said %q", line)
			}
			c.ready <- err
			_, _ = io.Copy(io.Discard, stdout) // until the client exits
		}()
	}
	timeout := time.NewTimer(bound)
	defer timeout.Stop()
	for i, c := range clients {
		select {
		case err := <-c.ready:
			if err != nil {
				return fmt.Errorf("client process %d: %w", i, err)
			}
		case <-timeout.C:
			return fmt.Errorf("client processes not ready within %v", bound)
		}
	}
	during()
	return nil
}

// runClient is a client process: n connections, each echoing one byte,
// then held idle until stdin closes; then each is reset (no TIME_WAIT left
// to hold a port for a minute) and the process exits.
func runClient(addr string, n int) error {
	conns := make([]*net.TCPConn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.SetLinger(0)
				_ = c.Close()
			}
		}
	}()
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				err := func() error {
					c, err := net.DialTimeout("tcp", addr, 30*time.Second)
					if err != nil {
						return err
					}
					tc := c.(*net.TCPConn)
					conns[i] = tc
					if err := tc.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
						return err
					}
					if _, err := tc.Write([]byte{'x'}); err != nil {
						return err
					}
					b := make([]byte, 1)
					if _, err := io.ReadFull(tc, b); err != nil {
						return err
					}
					if b[0] != 'x' {
						return fmt.Errorf("echo %q, want \"x\"", b)
					}
					return tc.SetDeadline(time.Time{})
				}()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d of %d: %w", i, n, err)
					}
					mu.Unlock()
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	fmt.Printf("ready %d\n", n)
	// Held until the parent closes stdin, or for the bound at most.
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * bound):
	}
	return nil
}

func report(w io.Writer, results []result) {
	kib := func(b float64) string { return fmt.Sprintf("%.2f KiB", b/1024) }
	fmt.Fprintln(w, "| server | idle connections | server RSS at rest | server RSS with them | RSS per connection | server threads | server descriptors | sockstat TCP mem per connection | slab per connection (both ends) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	perConn := map[string]map[int]float64{}
	slabPer := map[string]map[int]float64{}
	for _, r := range results {
		rss := float64(r.now.rss-r.before.rss) / float64(r.n)
		mem := float64(r.now.sockMem-r.before.sockMem) / float64(r.n)
		var slab int64
		var parts []string
		for _, c := range slabCaches {
			d := r.now.slab[c] - r.before.slab[c]
			slab += d
			parts = append(parts, fmt.Sprintf("%s %.0f B", c, float64(d)/float64(r.n)))
		}
		slabTxt := "unreadable"
		if len(r.now.slab) > 0 {
			slabTxt = fmt.Sprintf("%s (%s)", kib(float64(slab)/float64(r.n)), strings.Join(parts, ", "))
		}
		if perConn[r.model] == nil {
			perConn[r.model], slabPer[r.model] = map[int]float64{}, map[int]float64{}
		}
		perConn[r.model][r.n], slabPer[r.model][r.n] = rss, float64(slab)/float64(r.n)
		fmt.Fprintf(w, "| %s | %d | %.1f MiB | %.1f MiB | %s | %d → %d | %d → %d | %s | %s |\n",
			r.model, r.n, float64(r.before.rss)/(1<<20), float64(r.now.rss)/(1<<20), kib(rss),
			r.before.threads, r.now.threads, r.before.fds, r.now.fds, kib(mem), slabTxt)
	}
	fmt.Fprintln(w)
	for n, t := range perConn["thread"] {
		if e, ok := perConn["event"][n]; ok && t > 0 {
			verdict := "met"
			if e/t > 0.25 {
				verdict = "**missed**"
			}
			fmt.Fprintf(w, "eventloop RSS per connection / threading's, %d connections each: %.3f (target ≤ 0.25: %s)\n", n, e/t, verdict)
		}
	}
	for _, r := range results {
		rss := perConn[r.model][r.n]
		fmt.Fprintf(w, "projection for 100,000 connections from %s at %d: server RSS %.0f MiB; kernel slab %.0f MiB for both ends (about half of it the server's)\n",
			r.model, r.n, (float64(r.before.rss)+1e5*rss)/(1<<20), 1e5*slabPer[r.model][r.n]/(1<<20))
	}
}
