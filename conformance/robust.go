package conformance

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/echoconform/echoconform/internal/proc"
)

func init() {
	register("ROBUST-1", check{applies: always, run: testIdleClient})
	register("ROBUST-2", check{applies: always, run: testResetClient})
	register("ROBUST-3", check{applies: always, run: testTrickleClient})
	register("ROBUST-4", check{applies: echoesAsItReads, run: testNonReader})
}

// echoesAsItReads: a oneshot server reads at most max-msg and answers
// once; nothing it sends can back up.
func echoesAsItReads(ck *checker) string {
	if ck.o.proto.answersEarly() {
		return "a " + ck.o.protocol.String() + " server answers once, at most max-msg bytes: no echo backs up"
	}
	return ""
}

// nonReaderBytes bounds what ROBUST-4's client writes, for a server that
// reads and discards without end.
const nonReaderBytes = 64 << 20

// testNonReader tests that a client that writes and never reads its echo
// holds up no one (ROBUST-4). Its receive buffer is 4 KiB, so the server's
// echo backs up at once. It writes, never blocking, until the kernel shows
// the server's side of the connection with a full send buffer (a blocking
// write on it waits) and data it has not read. Then another client must be
// served within D. A
// single-threaded server that writes with a blocking write, or any server
// that writes to every client under one lock, waits for the client that
// does not read, and so does everyone else.
func testNonReader(ck *checker) {
	hog, err := ck.dialReceiveBuffer(4 << 10)
	if err != nil {
		ck.Fatal(err)
	}
	defer hog.abort()
	rc, err := hog.c.SyscallConn()
	if err != nil {
		ck.Fatal(err)
	}
	chunk := lines(7, 64<<10, ck.o.maxLine) // lines for a line server, bytes for the others
	ep := ck.server().ep
	sent, closed := 0, false
	// write writes without blocking until the kernel refuses more.
	write := func() {
		for sent < nonReaderBytes && !closed {
			var n int
			var werr error
			if err := rc.Write(func(fd uintptr) bool { n, werr = unix.Write(int(fd), chunk); return true }); err != nil || (werr != nil && werr != unix.EAGAIN) {
				closed = true // the server closed, or reset
				return
			}
			if werr == unix.EAGAIN {
				return
			}
			sent += n
		}
	}
	// Wait for an event: the echo backed up, the server let go of the
	// connection, or it took all 64 MiB. D bounds a wait in which the
	// server read nothing more and slept (no thread of it runnable), not
	// the whole wait: a server starved of the CPU on a loaded machine is
	// still on its way to the backup, and asking another client before it
	// got there would pass a server that blocks by the luck of the
	// scheduler. The check's watchdog bounds the rest.
	backedUp, gone, stalled := false, false, false
	for !backedUp && !gone && !closed && sent < nonReaderBytes && !stalled {
		before := sent
		moved := ck.poll(ck.dl.D, func() bool {
			write()
			q, found, err := ep.queues(hog.c, sent)
			if err != nil {
				ck.rec.harnessError(fmt.Errorf("ROBUST-4 cannot see the server's side of the connection: %w", err))
				runtime.Goexit()
			}
			backedUp, gone = q.SendFull && q.Recv > 0, !found
			return backedUp || gone || closed || sent >= nonReaderBytes || sent != before
		})
		// It read nothing for D: stalled, unless a thread of it is
		// runnable, that is held back by the scheduler alone.
		stalled = !moved && !ck.server().runnable()
		if err := ck.stopped(); err != nil {
			ck.Fatalf("while a client wrote and never read (%d bytes written): %v", sent, err)
		}
	}
	ck.tr.add(hog.id, "send", nil, sent)
	why := fmt.Sprintf("%d bytes written, the server's echo to it backed up", sent)
	if !backedUp {
		why = fmt.Sprintf("%d bytes written; the server's echo to it had not backed up, and it read nothing more for %v", sent, ck.dl.D)
	}
	if _, err := ck.dialExchange(1); err != nil {
		ck.Fatalf("while another client wrote and never read (%s): %v", why, err)
	}
}

// testIdleClient tests that a client that sends nothing does not keep
// others from being served (ROBUST-1).
func testIdleClient(ck *checker) {
	idle, err := ck.dial()
	if err != nil {
		ck.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := ck.dialExchange(i); err != nil {
			ck.Fatalf("while another client sat idle: %v", err)
		}
	}
	if _, err := ck.exchange(idle, ck.message(9)); err != nil {
		ck.Fatalf("the idle client, once it spoke: %v", err)
	}
}

// testResetClient tests that clients that reset mid-stream or close
// without reading do not stop the server (ROBUST-2).
func testResetClient(ck *checker) {
	waiting, err := ck.dial()
	if err != nil {
		ck.Fatal(err)
	}
	for i, n := range []int{1, 64 << 10, 256 << 10} {
		c, err := ck.dial()
		if err != nil {
			ck.Fatal(err)
		}
		msg := seeded(uint64(i), ck.o.proto.messageSize(n, ck.o.maxMsg))
		_ = c.write(msg) // the server may answer and close early
		ino := ck.serverInode(c)
		if i%2 == 0 {
			c.abort()
		} else {
			c.close() // unread echo: the client's close resets too
		}
		// Once the server has let go of the connection it has met the
		// reset: a server that dies of it is dead by then, every run.
		ck.awaitLetGo(ino)
	}
	for i := 0; i < 3; i++ {
		if _, err := ck.dialExchange(i); err != nil {
			ck.Fatalf("after clients that reset their connections: %v", err)
		}
	}
	if _, err := ck.exchange(waiting, ck.message(7)); err != nil {
		ck.Fatalf("a connection opened before the resets: %v", err)
	}
}

// testTrickleClient tests that a client sending a byte at a time is served
// correctly while others are served meanwhile (ROBUST-3).
func testTrickleClient(ck *checker) {
	msg := []byte("trickle, trickle")
	if len(msg) > ck.o.maxMsg {
		msg = msg[:ck.o.maxMsg]
	}
	slow, err := ck.dial()
	if err != nil {
		ck.Fatal(err)
	}
	other := func() {
		if _, err := ck.dialExchange(1); err != nil {
			ck.Fatalf("while another client trickled bytes: %v", err)
		}
	}
	sent := 0
	for i, b := range msg {
		if err := slow.write([]byte{b}); err != nil {
			if !ck.o.proto.answersEarly() {
				ck.Fatalf("trickling byte %d: %v", i, err)
			}
			break // the server may have answered already
		}
		sent++
		if i == len(msg)/2 {
			other()
		}
		time.Sleep(ck.dl.trickle) // the pause is the point of the check
	}
	if sent <= len(msg)/2 {
		other()
	}
	ck.o.proto.judgeTrickled(ck, slow, msg)
}

// serverInode returns the inode of the server's side of c once the server
// has accepted it, or 0 when the kernel does not show that within D (a
// server that accepts one connection at a time, or another namespace).
func (ck *checker) serverInode(c *conn) uint64 {
	ep := ck.server().ep
	var ino uint64
	ck.poll(ck.dl.D, func() bool {
		var err error
		ino, err = ep.inode(c.c)
		return ino != 0 || err != nil
	})
	return ino
}

// awaitLetGo waits, up to D, until no process of the server holds the
// socket inode any more: the server has handled the end of that
// connection, or died of it (the wait then ends at once).
func (ck *checker) awaitLetGo(ino uint64) {
	if ino == 0 {
		return
	}
	in := ck.server()
	ck.poll(ck.dl.D, func() bool { return !proc.Holds(in.processes(), ino) })
}
