package proc

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SetChildSubreaper marks the calling process as a child subreaper, so
// orphaned descendants (e.g. a server's forked grandchildren) are reparented
// to us instead of PID 1 and can be observed and reaped deterministically.
// The attribute is process-wide and idempotent.
func SetChildSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// IsChildSubreaper reports the PR_GET_CHILD_SUBREAPER attribute. The kernel
// writes the answer through the arg2 pointer (unix.PrctlRetInt would fail
// with EFAULT). unix.Syscall is used directly because, being an assembly
// function, it keeps &v alive across the uintptr conversion.
func IsChildSubreaper() (bool, error) {
	var v int32
	_, _, e := unix.Syscall(unix.SYS_PRCTL, unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&v)), 0)
	if e != 0 {
		return false, e
	}
	return v != 0, nil
}

// Reap blocks until each pid that is a child of the calling process has
// exited and been waited for, using wait4 on that exact pid and retrying
// EINTR. Pids that are not our children (ECHILD) are ignored. It never calls
// wait4(-1): os/exec owns its own children and would lose their status.
// Do not pass pids started by os/exec; use cmd.Wait for those.
func Reap(pids ...int) {
	for _, pid := range pids {
		if pid <= 0 { // wait4(0) / wait4(-n) would wait for whole groups
			continue
		}
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
	}
}

// ReapZombies reaps, without blocking (WNOHANG), only those of pids that are
// currently our exited children, and returns the pids it reaped.
func ReapZombies(pids ...int) []int {
	var out []int
	for _, pid := range pids {
		if pid <= 0 {
			continue
		}
		var ws unix.WaitStatus
		for {
			got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err == nil && got == pid {
				out = append(out, pid)
			}
			break
		}
	}
	return out
}

// Kill sends sig to every pid in pids, ignoring ESRCH (already gone) and
// other per-pid errors. Non-positive pids are skipped because kill(0) and
// kill(-n) address process groups, and kill(-1) every process we may signal.
// Use KillGroup for groups.
func Kill(sig unix.Signal, pids ...int) {
	for _, pid := range pids {
		if pid > 0 {
			_ = unix.Kill(pid, sig)
		}
	}
}

// KillGroup sends sig to the process group pgid (e.g. a child started with
// Setpgid, whose pgid is its pid), which also reaches backgrounded
// grandchildren. ESRCH (group empty) is not an error. pgid must be > 1 and
// not our own group: a zero value or a child that was not given its own
// group must never make us signal ourselves or every process.
func KillGroup(sig unix.Signal, pgid int) error {
	if pgid <= 1 || pgid == unix.Getpgrp() {
		return fmt.Errorf("proc: refusing to signal process group %d", pgid)
	}
	if err := unix.Kill(-pgid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("proc: kill group %d: %w", pgid, err)
	}
	return nil
}
