package conformance

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/echoconform/echoconform/internal/proc"
)

// Figures are the measurements of a check that are curves or trees rather
// than a verdict: what the HTML report draws, kept in the report so that
// JSON carries them too. Each is bounded.
type Figures struct {
	// Rounds: LEAK's readings of the server at rest, before the rounds of
	// connections (the baseline) and after each.
	Rounds []Reading `json:"rounds,omitempty"`
	// Concurrency: CONC-2's connections open, accepted and served over
	// time.
	Concurrency []ConcSample `json:"concurrency,omitempty"`
	// Trees: the server's processes at rest and under load (MODEL-1).
	Trees []ProcessTree `json:"trees,omitempty"`
}

// Reading is the server's resources at one moment.
type Reading struct {
	Label       string `json:"label"`
	Connections int    `json:"connections"` // served before it, after the warm-up round
	FDs         int    `json:"fds"`
	Threads     int    `json:"threads"`
	Children    int    `json:"children"`
	Zombies     int    `json:"zombies"`
	Goroutines  int    `json:"goroutines,omitempty"` // in process only
}

// ConcSample is CONC-2's count of connections at one moment.
type ConcSample struct {
	At       time.Duration `json:"at"` // since the check started
	Open     int           `json:"open"`
	Accepted int           `json:"accepted"`
	Served   int           `json:"served"`
}

// ProcessTree is the server's process and its descendants at one moment.
type ProcessTree struct {
	Label string        `json:"label"`
	At    time.Duration `json:"at"`
	Procs []Process     `json:"procs"`
	More  int           `json:"more,omitempty"` // processes beyond maxTree, not listed
}

// Process is one process of a tree.
type Process struct {
	PID   int    `json:"pid"`
	PPID  int    `json:"ppid"`
	Comm  string `json:"comm"`
	State string `json:"state"`
}

const (
	maxConcSamples = 512
	maxTree        = 256
)

func (f Figures) empty() bool {
	return len(f.Rounds) == 0 && len(f.Concurrency) == 0 && len(f.Trees) == 0
}

// figures returns a copy of what the check recorded, or nil.
func (ck *checker) figures() *Figures {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	if ck.fig.empty() {
		return nil
	}
	f := Figures{Rounds: slices.Clone(ck.fig.Rounds), Concurrency: slices.Clone(ck.fig.Concurrency), Trees: slices.Clone(ck.fig.Trees)}
	return &f
}

// recordRounds keeps LEAK's readings.
func (ck *checker) recordRounds(o *roundsObs) {
	if o == nil {
		return
	}
	rs := []Reading{o.base.figure("at rest before", 0)}
	for i, r := range o.after {
		rs = append(rs, r.figure(fmt.Sprintf("after round %d", i+1), (i+1)*leakConns))
	}
	ck.mu.Lock()
	defer ck.mu.Unlock()
	ck.fig.Rounds = rs
}

func (r reading) figure(label string, conns int) Reading {
	return Reading{Label: label, Connections: conns, FDs: r.FDs, Threads: r.Threads, Children: r.Children, Zombies: r.Zombies, Goroutines: r.Goroutines}
}

// concSample keeps one of CONC-2's counts.
func (ck *checker) concSample(open, accepted, served int) {
	at := time.Since(ck.tr.start)
	ck.mu.Lock()
	defer ck.mu.Unlock()
	if len(ck.fig.Concurrency) < maxConcSamples {
		ck.fig.Concurrency = append(ck.fig.Concurrency, ConcSample{At: at, Open: open, Accepted: accepted, Served: served})
	}
}

// snapshotTree keeps the server's process tree as it is now; in process
// the server is this process, and its tree is this process's.
func (ck *checker) snapshotTree(label string) {
	ck.mu.Lock()
	in := ck.in
	ck.mu.Unlock()
	if in == nil || in.pid == 0 {
		return
	}
	root := in.pid
	if in.srv != nil {
		root = os.Getpid()
	}
	t := ProcessTree{Label: label, At: time.Since(ck.tr.start)}
	kids, _ := proc.Descendants(root)
	for _, pid := range append([]int{root}, kids...) {
		info, err := proc.Read(pid)
		if err != nil {
			continue
		}
		if len(t.Procs) == maxTree {
			t.More++
			continue
		}
		t.Procs = append(t.Procs, Process{PID: pid, PPID: info.PPID, Comm: info.Comm, State: info.State})
	}
	ck.mu.Lock()
	defer ck.mu.Unlock()
	ck.fig.Trees = append(ck.fig.Trees, t)
}
