package forking

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/echoconform/echoconform/internal/forkchild"
)

// pool is the server's children: the spares it starts ahead of demand,
// the busy ones it hands connections to, and the reaping of them all. It
// has a lock of its own; the Server keeps the life cycle (listener,
// connections) and asks the pool for children.
type pool struct {
	// Fixed when the pool is made.
	child        string   // the program a child runs ("": this binary)
	env          []string // the children's environment
	maxChildren  int
	spare        int
	spareTimeout time.Duration
	idleGrace    time.Duration

	mu       sync.Mutex
	ready    *sync.Cond // a spare joined idle, the pool closed, or a waiter stopped
	idle     []*child   // spares, oldest first
	starting int        // children being started
	busy     int        // children handed a connection, not reaped yet
	waiting  int        // connections waiting for a child
	all      map[*child]bool
	draining bool          // Shutdown started: no more spares
	closed   bool          // nothing more is started
	lastUse  time.Time     // when a connection last took a child
	backoff  time.Duration // after a child failed to start
	retryAt  time.Time     // no child is started before

	wake     chan struct{}
	closing  chan struct{}
	spawning sync.WaitGroup // the spawners
	reapers  sync.WaitGroup
}

// child is one child process, spare or busy.
type child struct {
	cmd  *exec.Cmd
	ctrl int  // the server's end of the control socket; -1 once closed
	busy bool // handed a connection (under pool.mu)
	// peer is the server's copy of the connection's descriptor, or -1, to
	// tell whether its client has sent anything (sentNothing); since is
	// when it was handed (under pool.mu).
	peer  int
	since time.Time
	// rchar is, on a Unix socket, the bytes the child had read
	// (/proc/PID/io) before it was handed the connection; -1 on TCP.
	rchar     int64
	reclaimed bool          // killed for a readable connection (under pool.mu)
	done      chan struct{} // closed once the child is reaped
}

// newPool returns a pool that starts its spawners at once.
func newPool(program string, env []string, maxChildren, spare int, spareTimeout, idleGrace time.Duration) *pool {
	p := &pool{
		child: program, env: env, maxChildren: maxChildren, spare: spare,
		spareTimeout: spareTimeout, idleGrace: idleGrace,
		all:     map[*child]bool{},
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
	}
	p.ready = sync.NewCond(&p.mu)
	p.spawning.Add(spawners)
	for range spawners {
		go p.spawner()
	}
	return p
}

// hasRoom reports whether a connection would get a child without a
// reclaim: a spare, or a slot no busy child and no connection waiting
// before it holds.
func (p *pool) hasRoom() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle) > 0 || !p.atBound(p.waiting+1)
}

// atBound reports whether waiting connections, with the busy children,
// are more than maxChildren: the last of them gets a child only once a
// busy one exits. A slot held by a spare still starting or by an ended
// spare not reaped yet is not taken: its child, or the one the spawner
// starts once it is reaped, goes to a waiting connection. Called with p.mu
// held.
func (p *pool) atBound(waiting int) bool {
	return p.busy+waiting > p.maxChildren
}

func (p *pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// wakeWaiters makes the connections waiting in take check again whether
// they were stopped.
func (p *pool) wakeWaiters() {
	p.mu.Lock()
	p.ready.Broadcast()
	p.mu.Unlock()
}

// take returns the oldest spare, waiting for one when there is none, or nil
// once stopped is set or the pool closed, or at once when the pool is at
// the bound and the connection is not known to be readable. The child it
// returns is busy.
func (p *pool) take(readable bool, stopped *atomic.Bool) *child {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastUse = time.Now()
	if len(p.idle) == 0 && !p.closed && !stopped.Load() {
		p.waiting++
		p.poke()
		for len(p.idle) == 0 && !p.closed && !stopped.Load() {
			if p.atBound(p.waiting) {
				if !readable {
					// At the bound: wait for data first, and not here.
					p.waiting--
					return nil
				}
				p.reclaim()
			}
			p.ready.Wait()
		}
		p.waiting--
	}
	if p.closed || stopped.Load() {
		return nil
	}
	ch := p.idle[0]
	copy(p.idle, p.idle[1:])
	p.idle = p.idle[:len(p.idle)-1]
	ch.busy = true
	p.busy++
	p.poke() // a spare less: start another
	return ch
}

// handed records that ch was given the connection whose copy is peer (or
// -1), from now on, with rchar as returned by beforeHandover; it closes
// peer if ch was reaped meanwhile.
func (p *pool) handed(ch *child, peer int, rchar int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.all[ch] {
		ch.peer, ch.since, ch.rchar = peer, time.Now(), rchar
		// A connection waiting for a child at the bound passed ch over
		// while its handover was under way: it looks again.
		p.ready.Broadcast()
	} else if peer >= 0 {
		_ = unix.Close(peer) // reaped already
	}
}

// reclaim kills the busy child whose client has sent nothing for the
// longest time, at least idleGrace, unless one is being reclaimed already.
// Called with p.mu held, at the bound, by a readable connection waiting
// for a child.
func (p *pool) reclaim() {
	var victim *child
	var next time.Duration // when an idle child becomes reclaimable
	for ch := range p.all {
		if ch.reclaimed && ch.peer >= 0 {
			return // its slot is coming
		}
		if !ch.busy || ch.peer < 0 || ch.reclaimed || !ch.sentNothing() {
			continue
		}
		if idle := time.Since(ch.since); idle < p.idleGrace {
			if wait := p.idleGrace - idle; next == 0 || wait < next {
				next = wait
			}
			continue
		}
		if victim == nil || ch.since.Before(victim.since) {
			victim = ch
		}
	}
	if victim != nil {
		victim.reclaimed = true
		_ = victim.cmd.Process.Kill()
	} else if next > 0 {
		time.AfterFunc(next, p.wakeWaiters) // try again then
	}
}

// beforeHandover returns, when peer is a Unix socket about to be handed to
// ch, the bytes ch has read so far; otherwise -1. A Unix socket counts no
// bytes received, as TCP_INFO does: what its child has read tells instead.
// It must be read before the handover: after it, the child may read the
// client's first bytes at once.
func (ch *child) beforeHandover(peer int) int64 {
	if peer < 0 {
		return -1
	}
	if d, err := unix.GetsockoptInt(peer, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil || d != unix.AF_UNIX {
		return -1
	}
	return readRchar(ch.cmd.Process.Pid)
}

// sentNothing reports whether the client of busy child ch has sent no byte
// at all since the handover, when that can be told; false otherwise. Its
// peer is open. On TCP, TCP_INFO counts the bytes received; on a Unix
// socket, nothing waits to be read and the child has read nothing more
// than before the handover (a child reads its connection with read(2),
// which /proc/PID/io counts, and reads nothing else once it has it).
func (ch *child) sentNothing() bool {
	if ch.rchar < 0 {
		info, err := unix.GetsockoptTCPInfo(ch.peer, unix.IPPROTO_TCP, unix.TCP_INFO)
		return err == nil && info.Bytes_received == 0
	}
	// Waiting bytes first: bytes the child reads between the two looks
	// show in its count.
	if n, err := unix.IoctlGetInt(ch.peer, unix.SIOCINQ); err != nil || n > 0 {
		return false
	}
	return readRchar(ch.cmd.Process.Pid) == ch.rchar
}

// readRchar returns the bytes process pid has read with read(2) and its
// kind (rchar of /proc/PID/io), or -1.
func readRchar(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// give sends c and the prefix to the child over its control socket and
// closes the server's end: the child gets the connection, then EOF.
func (ch *child) give(c net.Conn, prefix []byte) error {
	defer ch.closeCtrl()
	if len(prefix) > forkchild.MaxPrefix {
		return fmt.Errorf("the prefix is %d bytes, more than the %d a child takes", len(prefix), forkchild.MaxPrefix)
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return fmt.Errorf("cannot hand a %T to a child process", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.Sendmsg(ch.ctrl, forkchild.Message(prefix), unix.UnixRights(int(fd)), nil, unix.MSG_NOSIGNAL)
	})
	if err == nil {
		err = serr
	}
	return err
}

func (ch *child) closeCtrl() {
	if ch.ctrl >= 0 {
		_ = unix.Close(ch.ctrl)
		ch.ctrl = -1
	}
}

// poke wakes the spawner.
func (p *pool) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// wanted is how many children the spawner should start now: one for each
// waiting connection, plus the spares while connections arrive, within
// maxChildren. Called with p.mu held.
func (p *pool) wanted(now time.Time) int {
	target := p.waiting
	if !p.draining && now.Sub(p.lastUse) < p.spareTimeout {
		target += p.spare
	}
	// Every child not reaped yet counts: busy ones, spares, and spares
	// that were ended but have not exited yet.
	room := p.maxChildren - (len(p.all) + p.starting)
	return min(target-len(p.idle)-p.starting, room)
}

// spawners is how many children may be starting at once. Starting one
// takes the spawner a fork and the child's exec (about a millisecond on a
// busy machine, most of it waiting for the child to be scheduled): two
// keep both cores busy.
const spawners = 2

// spawner starts children, one at a time, while the pool wants more,
// and ends the spares once connections stop coming. Several run at once.
func (p *pool) spawner() {
	defer p.spawning.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		for !p.closed && !time.Now().Before(p.retryAt) && p.wanted(time.Now()) > 0 {
			p.starting++
			if p.wanted(time.Now()) > 0 {
				p.poke() // more to do: another spawner may start one meanwhile
			}
			p.mu.Unlock()
			ch, err := p.spawn()
			p.mu.Lock()
			p.starting--
			if err != nil {
				// Out of processes or descriptors: back off as the accept
				// loop does, instead of spinning. Every spawner waits:
				// the pokes of the others do not end the wait.
				fmt.Fprintf(os.Stderr, "forking: %v\n", err)
				p.backoff = min(max(2*p.backoff, 5*time.Millisecond), time.Second)
				p.retryAt = time.Now().Add(p.backoff)
				break
			}
			p.backoff = 0
			// Started while the pool was closed, or drained with no
			// connection waiting for it: drain's endSpares ran before it
			// existed, so it ends here, or it would outlive Shutdown's
			// wait for the in-flight connections as an idle spare.
			if p.closed || (p.draining && len(p.idle) >= p.waiting) {
				ch.closeCtrl()
				break
			}
			p.idle = append(p.idle, ch)
			p.ready.Broadcast()
		}
		next := time.Hour
		if wait := time.Until(p.retryAt); wait > 0 {
			next = wait
		}
		if !p.closed && p.waiting == 0 && len(p.idle) > 0 {
			if unused := time.Since(p.lastUse); unused >= p.spareTimeout {
				p.endSpares()
			} else {
				next = min(next, p.spareTimeout-unused)
			}
		}
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return
		}
		timer.Reset(next)
		select {
		case <-p.wake:
		case <-timer.C:
		case <-p.closing:
		}
		timer.Stop()
	}
}

// endSpares closes the control socket of every spare: each reads EOF and
// exits. Called with p.mu held.
func (p *pool) endSpares() {
	for _, ch := range p.idle {
		ch.closeCtrl()
	}
	p.idle = nil
}

// spawn starts a child blocked on a new control socket, and its reaper.
func (p *pool) spawn() (*child, error) {
	if hook := spawnHook.Load(); hook != nil {
		defer (*hook)()()
	}
	cmd, ctrl, err := startChild(p.child, p.env)
	if err != nil {
		return nil, err
	}
	ch := &child{cmd: cmd, ctrl: ctrl, peer: -1, rchar: -1, done: make(chan struct{})}
	p.mu.Lock()
	p.all[ch] = true
	p.mu.Unlock()
	p.reapers.Add(1)
	go p.reap(ch)
	return ch, nil
}

// spawnHook, set by a test, runs as a child's start begins, and what it
// returns when the start has returned.
var spawnHook atomic.Pointer[func() func()]

// startChild starts the program at path (or re-executes this binary when
// path is empty) with env and the child's end of a new control socket as
// descriptor forkchild.CtrlFD, and returns the server's end.
func startChild(path string, env []string) (*exec.Cmd, int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, -1, fmt.Errorf("control socket: %w", err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "control")
	defer theirs.Close()
	// -test.run=^$ keeps a go test binary that forgot Init from running tests.
	args := []string{os.Args[0], "-test.run=^$"}
	if path == "" {
		path = "/proc/self/exe"
	} else {
		args = []string{path}
	}
	cmd := &exec.Cmd{
		Path:       path,
		Args:       args,
		Env:        env,
		Stderr:     os.Stderr,
		ExtraFiles: []*os.File{theirs}, // becomes forkchild.CtrlFD
		// A child must not outlive a server that was killed.
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	if err := cmd.Start(); err != nil {
		_ = unix.Close(fds[0])
		return nil, -1, err
	}
	return cmd, fds[0], nil
}

// reap waits for ch to exit (no zombie) and forgets it.
func (p *pool) reap(ch *child) {
	defer p.reapers.Done()
	_ = ch.cmd.Wait()
	p.mu.Lock()
	delete(p.all, ch)
	if ch.peer >= 0 {
		_ = unix.Close(ch.peer)
		ch.peer = -1
	}
	if ch.busy {
		p.busy--
	} else {
		// A spare that died before it got a connection.
		for i, c := range p.idle {
			if c == ch {
				p.idle = append(p.idle[:i], p.idle[i+1:]...)
				ch.closeCtrl()
				break
			}
		}
	}
	p.mu.Unlock()
	close(ch.done)
	p.poke()
}

// drain ends the spares and starts no more: only a connection in flight
// that becomes ready gets a child now.
func (p *pool) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draining = true
	p.endSpares()
}

// close stops the spawners and ends the spares; busy children go on.
func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.draining = true
	close(p.closing)
	p.endSpares()
	p.ready.Broadcast()
}

// killAll kills every child still alive.
func (p *pool) killAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ch := range p.all {
		_ = ch.cmd.Process.Kill()
	}
}

// waitSpawners waits until the spawners have returned (after close): no
// child is started after this.
func (p *pool) waitSpawners() { p.spawning.Wait() }

// reaped returns a channel closed once every child started is reaped.
func (p *pool) reaped() <-chan struct{} {
	done := make(chan struct{})
	go func() { p.reapers.Wait(); close(done) }()
	return done
}
