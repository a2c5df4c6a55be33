// Package proc reads Linux process bookkeeping from /proc (state,
// children, descriptors, listening sockets) and wraps the few syscalls the
// conformance harness needs to own its process tree: subreaper, targeted
// reaping and signalling.
//
// Everything here is a snapshot of a moving target: processes may vanish
// between two reads, so per-process errors inside scans are skipped rather
// than reported.
package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// Info is one reading of a process.
type Info struct {
	PID, PPID, PGID int
	State           string // "R","S","Z",... from /proc/PID/stat
	Comm            string
	FDs             int // open descriptors (len of /proc/PID/fd)
	Threads         int
	RSS             int64 // bytes
}

// procFS is opened once; NewDefaultFS only validates the mount point.
var procFS = sync.OnceValues(func() (procfs.FS, error) { return procfs.NewDefaultFS() })

// gone normalises the errors a vanished process produces. Depending on the
// moment it disappears, the kernel answers ENOENT (directory gone) or ESRCH
// (file opened, task released before read), and procfs may surface either,
// sometimes wrapped in a parse error. Callers only want errors.Is(err,
// os.ErrNotExist), so whenever /proc/PID no longer exists we say exactly that.
func gone(pid int, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) || !exists(pid) {
		return fmt.Errorf("proc %d: %w (%v)", pid, os.ErrNotExist, err)
	}
	return fmt.Errorf("proc %d: %w", pid, err)
}

func exists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

func stat(pid int) (procfs.Proc, procfs.ProcStat, error) {
	pfs, err := procFS()
	if err != nil {
		return procfs.Proc{}, procfs.ProcStat{}, err
	}
	p, err := pfs.Proc(pid)
	if err != nil {
		return p, procfs.ProcStat{}, gone(pid, err)
	}
	st, err := p.Stat()
	return p, st, gone(pid, err)
}

// Read takes one reading of pid. The error wraps os.ErrNotExist if the
// process is gone (a zombie still exists and reads as State "Z").
func Read(pid int) (Info, error) {
	p, st, err := stat(pid)
	if err != nil {
		return Info{}, err
	}
	n, err := p.FileDescriptorsLen()
	if err != nil {
		return Info{}, gone(pid, err)
	}
	return Info{
		PID: pid, PPID: st.PPID, PGID: st.PGRP,
		State: st.State, Comm: st.Comm,
		FDs: n, Threads: st.NumThreads,
		RSS: int64(st.ResidentMemory()),
	}, nil
}

// hasChildrenFile reports whether the kernel has CONFIG_PROC_CHILDREN. It is
// checked once on our own thread because a per-PID ENOENT is ambiguous: a
// thread of the target may simply have exited between ReadDir and ReadFile.
var hasChildrenFile = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/thread-self/children")
	return err == nil
})

// Children returns the direct children of pid, sorted. It takes the union of
// /proc/PID/task/*/children because that file is per thread and Go forks
// from whichever OS thread happens to run the goroutine. Without
// CONFIG_PROC_CHILDREN it falls back to scanning every /proc/*/stat for PPid.
func Children(pid int) ([]int, error) {
	if !hasChildrenFile() {
		return childrenByScan(pid)
	}
	task := "/proc/" + strconv.Itoa(pid) + "/task"
	tids, err := os.ReadDir(task)
	if err != nil {
		return nil, gone(pid, err)
	}
	set := map[int]bool{}
	for _, tid := range tids {
		b, err := os.ReadFile(task + "/" + tid.Name() + "/children")
		if err != nil {
			continue // thread exited meanwhile
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				set[c] = true
			}
		}
	}
	return sortedKeys(set), nil
}

func childrenByScan(pid int) ([]int, error) {
	if !exists(pid) {
		return nil, gone(pid, os.ErrNotExist)
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
		if st, err := p.Stat(); err == nil && st.PPID == pid {
			set[p.PID] = true
		}
	}
	return sortedKeys(set), nil
}

// Descendants returns all descendants of pid breadth-first, excluding pid.
// Only a vanished pid itself is an error; subtrees that vanish mid-walk are
// simply cut short.
func Descendants(pid int) ([]int, error) {
	queue, err := Children(pid)
	if err != nil {
		return nil, err
	}
	var out []int
	seen := map[int]bool{pid: true}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if seen[c] { // a reparent during the walk could show a pid twice
			continue
		}
		seen[c] = true
		out = append(out, c)
		kids, _ := Children(c)
		queue = append(queue, kids...)
	}
	return out, nil
}

// Zombies returns the children of pid in state "Z", sorted: exited but not
// yet reaped by pid.
func Zombies(pid int) ([]int, error) {
	kids, err := Children(pid)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, c := range kids {
		if _, st, err := stat(c); err == nil && st.State == "Z" {
			out = append(out, c)
		}
	}
	return out, nil
}

func sortedKeys[K int | uint64](set map[K]bool) []K {
	out := make([]K, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Runnable reports whether a thread of one of pids is running or waiting
// for a CPU (state R in /proc/PID/task/TID/stat): the process has work to
// do and only the scheduler holds it back, as opposed to sleeping until an
// event.
func Runnable(pids ...int) bool {
	pfs, err := procFS()
	if err != nil {
		return false
	}
	for _, pid := range pids {
		threads, err := pfs.AllThreads(pid)
		if err != nil {
			continue // gone
		}
		for _, t := range threads {
			if st, err := t.Stat(); err == nil && st.State == "R" {
				return true
			}
		}
	}
	return false
}
