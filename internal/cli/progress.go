package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress shows how a run goes on stderr, which stays quiet for the
// report on stdout. Off a terminal (a CI log) it writes a line per
// requirement finished. On a terminal, where those lines and the report
// would show every requirement twice, it keeps one status line that it
// rewrites in place (requirements done of all, the one running, the time so
// far, the failures so far) and that stop erases before the report.
type progress struct {
	w     io.Writer
	live  bool
	total int
	start time.Time

	mu      sync.Mutex
	done    int
	failed  int
	current string
	stopped bool
	quit    chan struct{} // ends the ticker
	ticked  chan struct{} // closed when the ticker has returned
}

func newProgress(w io.Writer, live bool, total int) *progress {
	p := &progress{w: w, live: live, total: total, start: time.Now()}
	if live {
		// The elapsed time moves on while a long check runs.
		p.quit, p.ticked = make(chan struct{}), make(chan struct{})
		go p.tick()
	}
	return p
}

func (p *progress) tick() {
	defer close(p.ticked)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			p.mu.Lock()
			p.draw()
			p.mu.Unlock()
		}
	}
}

// Write takes conformance.Progress's lines: "ID ..." when a requirement
// starts, "ID VERDICT TIME" when it ends.
func (p *progress) Write(b []byte) (int, error) {
	line := strings.TrimSpace(string(b))
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.live {
		if strings.HasSuffix(line, "...") || strings.Contains(line, " ERROR ") {
			return len(b), nil // finished requirements only; a harness error ends with its own line
		}
		_, err := p.w.Write(append([]byte("echoconform: "), b...))
		return len(b), err
	}
	switch f := strings.Fields(line); {
	case len(f) < 2:
	case f[1] == "...":
		p.current = f[0]
	default:
		p.done++
		p.current = ""
		if f[1] == "FAIL" {
			p.failed++
		}
	}
	p.draw()
	return len(b), nil
}

// draw rewrites the status line; it is short, so that no terminal wraps
// it (a wrapped line cannot be rewritten with a carriage return).
func (p *progress) draw() {
	if p.stopped {
		return
	}
	s := fmt.Sprintf("echoconform: %d/%d", p.done, p.total)
	if p.current != "" {
		s += " " + p.current + " running"
	}
	s += fmt.Sprintf(", %ds", int(time.Since(p.start).Seconds()))
	if p.failed > 0 {
		s += fmt.Sprintf(", %d failed so far", p.failed)
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", s)
}

// stop erases the status line: the report takes its place.
func (p *progress) stop() {
	if !p.live {
		return
	}
	close(p.quit)
	<-p.ticked
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	fmt.Fprint(p.w, "\r\x1b[K")
}
