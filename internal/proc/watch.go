package proc

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// WatchExit returns a channel that is closed when process pid ends
// (becomes a zombie or is reaped), whether or not it is our child. It
// opens a pidfd (pidfd_open(2), Linux 5.3+), which becomes readable when
// the process exits, and waits for that in the runtime's netpoller: no
// polling loop, and no thread blocked while waiting.
//
// stop releases the watch (goroutine and pidfd); it may be called any
// number of times, before or after the exit, and returns once both are
// gone. If pid does not exist, exited is already closed. As with any pid,
// a process that ended before the call may have had its pid reused.
func WatchExit(pid int) (exited <-chan struct{}, stop func(), err error) {
	ch := make(chan struct{})
	if pid <= 0 {
		return nil, nil, fmt.Errorf("proc: watch pid %d: not a process", pid)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		close(ch)
		return ch, func() {}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("proc: pidfd_open %d: %w", pid, err)
	}
	// Non-blocking, so that os.NewFile registers it with the netpoller
	// (set here rather than with PIDFD_NONBLOCK, which needs Linux 5.10).
	if err := unix.SetNonblock(pidfd, true); err != nil {
		unix.Close(pidfd)
		return nil, nil, fmt.Errorf("proc: pidfd %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(pidfd), "pidfd")
	rc, err := f.SyscallConn()
	if err == nil {
		// Only a file the netpoller took supports deadlines; without one,
		// Read below would fail at once and exited would never close.
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("proc: pidfd %d: %w", pid, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer f.Close()
		// Read calls the function, and while it returns false waits until
		// the poller reports the pidfd readable. It fails instead once stop
		// has closed f.
		err := rc.Read(func(fd uintptr) bool {
			p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(p, 0) // a check, never a wait
			return err == nil && n > 0
		})
		if err == nil {
			close(ch)
		}
	}()
	stop = func() {
		f.Close() // wakes Read; a second Close only reports ErrClosed
		<-done
	}
	return ch, stop, nil
}
