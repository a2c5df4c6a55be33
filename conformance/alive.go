package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// A server that dies of something a check did (an empty message, a reset,
// a long line) must not pass because the check happened not to look
// again: every wait of a check also watches the server, and after every
// check that is not about shutdown the harness confirms that the server
// still runs and serves a fresh connection (ALIVE-1).

func init() {
	register("ALIVE-1", check{applies: always, run: testAlive})
}

var (
	errCheckOver  = errors.New("the check is over")
	errServerDied = errors.New("the server died")
)

// watch ends the check's waits as soon as its server dies: its context is
// cancelled with the cause.
func (ck *checker) watch(in *instance) {
	if in.dead == nil {
		return // nothing of the server can be watched (an address elsewhere)
	}
	select {
	case <-in.dead:
	case <-ck.ctx.Done():
		return
	}
	if ck.ctx.Err() != nil || in.stopping.Load() {
		return // the check is over, or it ends the server itself
	}
	why := in.death()
	ck.mu.Lock()
	ck.death = fmt.Sprintf("the server died during this check: %s, after %s", why, ck.tr.lastStep())
	ck.mu.Unlock()
	// The check's connections stay open: what the server wrote before it
	// died still arrives, and the kernel ends them, as it ends every socket
	// of a process that exits. Waits for events end now.
	ck.cancel(fmt.Errorf("%w: %s", errServerDied, why))
}

// died says how the server died during the check, or "".
func (ck *checker) died() string {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	return ck.death
}

// diedOf says how the server died, once something went wrong: a client
// sees a dead server's sockets close a moment before the kernel reports
// the process gone, so it waits for that report, briefly (D/20), and ends
// at once when it comes.
func (ck *checker) diedOf() string {
	if d := ck.died(); d != "" {
		return d
	}
	ck.mu.Lock()
	in := ck.in
	ck.mu.Unlock()
	if in == nil || in.dead == nil || ck.ends || in.stopping.Load() {
		return ""
	}
	select {
	case <-in.dead:
		return fmt.Sprintf("the server died during this check: %s, after %s", in.death(), ck.tr.lastStep())
	case <-time.After(ck.dl.settle):
		return ""
	}
}

// stopped is why the check must stop, or nil.
func (ck *checker) stopped() error {
	if ck.ctx.Err() == nil {
		return nil
	}
	return context.Cause(ck.ctx)
}

// aliveLog collects, over a run, the checks after which the server was
// dead or no longer served.
type aliveLog struct {
	mu      sync.Mutex
	checked []string
	deaths  []string
}

// after confirms that the check's server outlived it.
func (a *aliveLog) after(ck *checker, in *instance) {
	if in.stopping.Load() {
		return // the check shut the server down on purpose
	}
	why := ck.died()
	if why == "" {
		if problem := ck.serves(in); problem != "" {
			if in.deadNow() {
				why = fmt.Sprintf("the server died of this check (it was dead once the check was over): %s, after %s", in.death(), ck.tr.lastStep())
			} else {
				why = fmt.Sprintf("once the check was over (its last step: %s), %s", ck.tr.lastStep(), problem)
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checked = append(a.checked, ck.req.ID)
	if why != "" {
		a.deaths = append(a.deaths, fmt.Sprintf("%s: %s%s", ck.req.ID, why, in.excerpt()))
	}
}

func (a *aliveLog) report() (checked, deaths []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.checked...), append([]string(nil), a.deaths...)
}

// serves says what is wrong when the server is dead or does not take a
// fresh connection within D, or "". Taken means accepted: the kernel shows
// the server's side of the connection held by a process (sock_diag), so a
// server whose replies are slow (a fork-model child starting on a loaded
// machine), or wrong (the other checks' business), still counts as alive.
// Where the kernel does not show the connection (another host), a reply or
// an orderly close within D counts instead.
func (ck *checker) serves(in *instance) string {
	if in.deadNow() {
		return "the server had died: " + in.death()
	}
	c, err := in.ep.dial(net.Dialer{Timeout: ck.dl.D}, ck.dl)
	if err != nil {
		return "a fresh connection failed: " + explain(err)
	}
	defer c.Close()
	visible := false
	for limit := time.Now().Add(ck.dl.D); time.Now().Before(limit); time.Sleep(ck.dl.poll) {
		ino, err := in.ep.inode(c)
		if ino != 0 {
			return ""
		}
		if err == nil {
			if _, _, found, _ := in.ep.recvQueue(c); found {
				visible = true // in the backlog: not accepted yet
			}
		}
		if in.deadNow() {
			return "the server had died: " + in.death()
		}
		if !visible {
			break
		}
	}
	if visible {
		return fmt.Sprintf("the server did not accept a fresh connection within %v", ck.dl.D)
	}
	_ = c.SetDeadline(time.Now().Add(ck.dl.D))
	if _, err := c.Write([]byte("are you still there?")); err != nil {
		return "a fresh connection could not send: " + explain(err)
	}
	n, err := c.Read(make([]byte, 4096))
	if n > 0 || err == io.EOF {
		return ""
	}
	return fmt.Sprintf("a fresh connection got no reply within %v: %s", ck.dl.D, explain(err))
}

// testAlive tests that the server survives clients that go away in every
// legal way, and that it outlived every check of the run (ALIVE-1).
func testAlive(ck *checker) {
	in := ck.server()
	steps := []struct {
		what string
		do   func() error
	}{
		{"a connection closed at once", func() error {
			c, err := ck.dial()
			if err == nil {
				c.close()
			}
			return err
		}},
		{"a connection half-closed at once (an empty message)", func() error {
			c, err := ck.dial()
			if err != nil {
				return err
			}
			defer c.close()
			if err := c.halfClose(); err != nil {
				return err
			}
			_, _ = c.readToEOF(1 << 20) // nothing, or the prefix: PREFIX-4's business
			return nil
		}},
		{"a connection reset after 100 bytes", func() error {
			c, err := ck.dial()
			if err != nil {
				return err
			}
			_ = c.write(seeded(1, 100))
			c.abort()
			return nil
		}},
		{"a connection closed with its reply unread", func() error {
			c, err := ck.dial()
			if err != nil {
				return err
			}
			_ = c.write(ck.message(1))
			c.close()
			return nil
		}},
	}
	var own string
	for _, s := range steps {
		if err := s.do(); err != nil {
			own = fmt.Sprintf("%s: %v", s.what, err)
			break
		}
		if why := ck.serves(in); why != "" {
			own = fmt.Sprintf("after %s, %s", s.what, why)
			break
		}
	}
	checked, deaths := ck.o.alive.report()
	switch {
	case len(deaths) > 0 && own != "":
		ck.Fatalf("the server died of, or stopped serving after, %d of the %d checks before this one:\n%s\nand on a fresh server, %s",
			len(deaths), len(checked), strings.Join(deaths, "\n"), own)
	case len(deaths) > 0:
		ck.Fatalf("the server died of, or stopped serving after, %d of the %d checks before this one:\n%s",
			len(deaths), len(checked), strings.Join(deaths, "\n"))
	case own != "":
		ck.Fatalf("%s", own)
	}
	if len(checked) > 0 {
		ck.note("the server outlived each of %d checks: %s", len(checked), strings.Join(checked, " "))
	}
}
