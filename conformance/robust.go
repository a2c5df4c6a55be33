package conformance

import (
	"net"
	"time"

	"github.com/echoconform/echoconform/internal/proc"
)

func init() {
	register("ROBUST-1", check{applies: always, run: testIdleClient})
	register("ROBUST-2", check{applies: always, run: testResetClient})
	register("ROBUST-3", check{applies: always, run: testTrickleClient})
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
	server, client := c.c.RemoteAddr().(*net.TCPAddr), c.c.LocalAddr().(*net.TCPAddr)
	var ino uint64
	ck.poll(ck.dl.D, func() bool {
		var err error
		ino, err = proc.SocketInode(server, client)
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
