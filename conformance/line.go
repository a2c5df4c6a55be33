package conformance

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"pgregory.net/rapid"
)

func init() {
	register("LINE-1", check{applies: onlyLine, run: testLineModel})
	register("LINE-2", check{applies: onlyLine, run: testLineInteractive})
	register("LINE-3", check{applies: onlyLine, run: testLineHalfClose})
	register("LINE-4", check{applies: onlyLine, run: testLineFinal})
	register("LINE-5", check{applies: onlyLine, run: testLineLong})
	register("LINE-6", check{applies: onlyLine, run: testLinePartial})
}

func onlyLine(ck *checker) string {
	if _, ok := ck.o.proto.(lineProtocol); !ok {
		return "the server speaks " + ck.o.protocol.String()
	}
	return ""
}

// FinalLine is what a line server does with a last line that has no
// newline when the client half-closes (SPEC.md LINE-4).
type FinalLine string

const (
	FinalLineEcho FinalLine = "echo" // it comes back, whole (the default)
	FinalLineDrop FinalLine = "drop" // nothing of it comes back
)

// lineProtocol is line echo: each complete line comes back once its
// newline arrives; the client's half-close ends the connection.
type lineProtocol struct{}

func (lineProtocol) messageSize(n, maxMsg int) int { return n }

// endMessage ends the line: the echo then includes the newline.
func (lineProtocol) endMessage(c *conn) error { return c.write([]byte("\n")) }

// frame ends msg with a newline, unless it ends with one.
func (lineProtocol) frame(msg []byte) []byte {
	if len(msg) > 0 && msg[len(msg)-1] == '\n' {
		return msg
	}
	return append(msg[:len(msg):len(msg)], '\n')
}

func (lineProtocol) answersEarly() bool { return false }

// judgeTrickled ends the trickled line with its newline and expects it
// back without a half-close.
func (lineProtocol) judgeTrickled(ck *checker, c *conn, msg []byte) {
	if err := c.write([]byte("\n")); err != nil {
		ck.Fatal(err)
	}
	if _, err := ck.expectEcho(c, append(msg, '\n')); err != nil {
		ck.Fatalf("the trickling client, its line complete: %v", err)
	}
}

// judgeCrossTalk interleaves lines on k connections, round robin, each its
// own, and expects every echo whole with the connections still open.
func (lineProtocol) judgeCrossTalk(ck *checker, k int) {
	es, closeAll := ck.openEchoes(k)
	defer closeAll()
	for round := 0; round < 4; round++ {
		for i, e := range es {
			if err := e.send(lines(uint64(1000*i+round), 100+1000*round, ck.o.maxLine)); err != nil {
				ck.Fatal(err)
			}
		}
	}
	for _, e := range es {
		if err := e.waitEcho(ck.o.prefix, ck.dl.D); err != nil {
			ck.Fatalf("%d connections at once, interleaved lines: %v", k, err)
		}
	}
}

// oneLine is a line of n bytes, its newline included: every byte value
// but the newline first, then pseudo-random bytes.
func oneLine(n int) []byte {
	b := boundaryData(n)
	for i := range b {
		if b[i] == '\n' {
			b[i] = 'N'
		}
	}
	if n > 0 {
		b[n-1] = '\n'
	}
	return b
}

// lines is n bytes of complete lines of 1 to min(maxLine, 300) bytes
// (newline included), a quarter of them ending in CR LF, every other byte
// value in between.
func lines(seed uint64, n, maxLine int) []byte {
	b := oneLine(n)
	r := rand.New(rand.NewPCG(seed, 1))
	longest := min(maxLine, 300)
	for end := 0; end < n; {
		end = min(end+1+r.IntN(longest), n)
		b[end-1] = '\n'
		if r.IntN(4) == 0 && end >= 2 && b[end-2] != '\n' {
			b[end-2] = '\r'
		}
	}
	return b
}

// lineBoundaries runs LINE-1's fixed cases before its random ones, so that
// a server that drops, duplicates or alters bytes of lines fails in every
// run: the empty connection; an empty line; lines ending in CR LF, lone
// CRs; each boundary length of one line up to max-line in one write; many
// lines in one write (a server that keeps only the first line of a read);
// lines cut into writes of every power-of-two size (lines split across
// writes); then, as STREAM-1 does, a reset and four connections open at
// once.
func lineBoundaries(ck *checker) {
	ck.fixedEcho(nil, 1) // the empty connection: the prefix alone, then EOF
	ck.fixedEcho([]byte("\n"), 1)
	ck.fixedEcho([]byte("CR LF\r\n\r\na\rb\r\r\n"), 64)
	for _, n := range boundarySizes(ck.o.maxLine) {
		ck.fixedEcho(oneLine(n), n)
	}
	many := lines(1, 64<<10, ck.o.maxLine)
	ck.fixedEcho(many, len(many))
	for c := 1; c <= 64<<10; c <<= 1 {
		ck.fixedEcho(lines(uint64(c), min(max(4*c+1, 8193), 256<<10), ck.o.maxLine), c)
	}
	ck.fixedReset(lines(4096, 4096, ck.o.maxLine))
	openAtOnce(ck, func(i int) []byte { return lines(uint64(1000+i), 1000+i, ck.o.maxLine) })
}

// testLineModel tests that every line, on connections among several open
// at once and driven by arbitrary writes (lines split and joined in any
// way), half-closes and resets, comes back exactly once, in order, after
// the prefix (LINE-1). rapid shrinks a failure to the fewest lines and
// bytes. Each step writes whole lines, in one write or several: a line
// held incomplete while other clients wait is LINE-6's business, and a
// step that left one would make this check's verdict on such a server
// depend on the draws.
func testLineModel(ck *checker) {
	lineBoundaries(ck)
	most := ck.o.maxLine - 1
	echoModel(ck, func(t *rapid.T) [][]byte { return lineWrites(t, most) })
}

// lineWrites draws 1 to 4 lines of at most most bytes before their
// newline, any byte values but the newline, cut into 1 to 4 writes at
// any points.
func lineWrites(t *rapid.T, most int) [][]byte {
	var b []byte
	for range rapid.IntRange(1, 4).Draw(t, "lines") {
		n := rapid.OneOf(rapid.IntRange(0, min(16, most)), rapid.IntRange(0, most)).Draw(t, "line length")
		var p []byte
		if n <= 16 {
			p = rapid.SliceOfN(rapid.Byte(), n, n).Draw(t, "line")
		} else {
			p = seeded(rapid.Uint64().Draw(t, "line seed"), n)
		}
		b = append(append(b, bytes.ReplaceAll(p, []byte("\n"), []byte("N"))...), '\n')
	}
	var cuts []int
	if len(b) > 1 {
		cuts = rapid.SliceOfNDistinct(rapid.IntRange(1, len(b)-1), 0, 3, rapid.ID[int]).Draw(t, "cuts")
		slices.Sort(cuts)
	}
	var writes [][]byte
	from := 0
	for _, c := range cuts {
		writes = append(writes, b[from:c])
		from = c
	}
	return append(writes, b[from:])
}

// testLineInteractive tests that every complete line comes back within D
// of its newline while the connection stays open: lines of every length
// class, several lines in one write, and a line split across writes
// (LINE-2).
func testLineInteractive(ck *checker) {
	e, err := ck.openEcho()
	if err != nil {
		ck.Fatal(err)
	}
	defer func() { e.close(); <-e.done }()
	await := func(what string) {
		if err := e.waitEcho(ck.o.prefix, ck.dl.D); err != nil {
			ck.Fatalf("%s did not come back within D of its newline, the connection open: %v", what, err)
		}
	}
	for _, n := range []int{1, 2, 100, 1500, ck.o.maxLine} {
		if err := e.send(oneLine(n)); err != nil {
			ck.Fatal(err)
		}
		await(fmt.Sprintf("a line of %d bytes", n))
	}
	if err := e.send([]byte("one\ntwo\r\nthree\n")); err != nil {
		ck.Fatal(err)
	}
	await("three lines in one write")
	for _, p := range [][]byte{[]byte("a line "), []byte("split across "), []byte("three writes\n")} {
		if err := e.send(p); err != nil {
			ck.Fatal(err)
		}
	}
	await("a line split across three writes")
	// One more line also shows whatever the server sent beyond an echo.
	if err := e.send([]byte("x\n")); err != nil {
		ck.Fatal(err)
	}
	await("a 2-byte line after the others")
}

// testLineHalfClose tests that after a half-close the server sends every
// line still due and closes its side (LINE-3).
func testLineHalfClose(ck *checker) {
	halfClose(ck, "bytes of lines", func(n int) []byte { return lines(uint64(n), n, ck.o.maxLine) })
}

// testLineFinal tests what becomes of a last line without a newline at
// the client's half-close: it comes back whole, or (declared drop) not at
// all, never altered, and then EOF (LINE-4).
func testLineFinal(ck *checker) {
	finals := [][]byte{
		[]byte("no newline"),
		[]byte("a line\nthen no newline"),
		[]byte("ends in CR\r"),
		oneLine(ck.o.maxLine)[:ck.o.maxLine-1],
	}
	for _, msg := range finals {
		c, err := ck.dial()
		if err != nil {
			ck.Fatal(err)
		}
		if err := c.write(msg); err != nil {
			ck.Fatal(err)
		}
		if err := c.halfClose(); err != nil {
			ck.Fatal(err)
		}
		got, err := c.readToEOF(len(msg) + 1<<20)
		c.close()
		last := msg[bytes.LastIndexByte(msg, '\n')+1:]
		want := msg
		if ck.o.finalLine == FinalLineDrop {
			want = msg[:len(msg)-len(last)]
		}
		how := fmt.Sprintf("%d bytes ending in a line of %d bytes without a newline, then a half-close (declared: -line-eof %s)", len(msg), len(last), ck.o.finalLine)
		if err != nil {
			ck.Fatalf("%s: the client did not read EOF: %v", how, err)
		}
		if _, err := verifyReply(ck.o.prefix, got, want); err != nil {
			ck.Fatalf("%s: %v", how, err)
		}
	}
}

// testLineLong tests that a line of max-line bytes comes back whole in
// one write and split in two, and that a longer line (4 max-line + 1
// bytes) does not kill the server: once it has read the line, or let go
// of the connection, a new connection is served (LINE-5). What comes back
// of the longer line is the server's business.
func testLineLong(ck *checker) {
	max := ck.o.maxLine
	full := oneLine(max)
	ck.fixedEcho(full, max)
	ck.fixedEcho(full, (max+1)/2)
	long, err := ck.openEcho()
	if err != nil {
		ck.Fatal(err)
	}
	defer func() { long.close(); <-long.done }()
	ino := ck.serverInode(long.conn)
	if err := long.send(oneLine(4*max + 1)); err != nil && !isReset(err) {
		ck.Fatalf("writing a line of %d bytes (max-line %d): %v", 4*max+1, max, err)
	}
	ck.awaitRead(long.conn, time.Now())
	if long.waitEcho(ck.o.prefix, ck.dl.early) != nil {
		ck.awaitLetGo(ino) // a server that closes or dies on it has done so
	}
	if _, err := ck.dialExchange(1); err != nil {
		ck.Fatalf("after a line of %d bytes (max-line %d) on another connection: %v", 4*max+1, max, err)
	}
}

// testLinePartial tests that a client holding an incomplete line holds up
// no one: once the server has read the start of its line, another client's
// line comes back within D; then the first line, completed, comes back
// whole (LINE-6). A server that reads a line with a blocking readline
// after select said a client was ready fails here.
func testLinePartial(ck *checker) {
	holder, err := ck.dial()
	if err != nil {
		ck.Fatal(err)
	}
	start := []byte("the start of a line, and no newline yet")
	if err := holder.write(start); err != nil {
		ck.Fatal(err)
	}
	ck.awaitRead(holder, time.Now())
	other, err := ck.dial()
	if err != nil {
		ck.Fatal(err)
	}
	msg := ck.message(1)
	if err := other.write(msg); err != nil {
		ck.Fatal(err)
	}
	got, err := ck.readEcho(other, nil, msg, ck.dl.D)
	if _, err := ck.verifyEcho(other, got, msg, err); err != nil {
		ck.Fatalf("while another client held an incomplete line (%d bytes, read by the server): %v", len(start), err)
	}
	if err := holder.write([]byte(", now complete\n")); err != nil {
		ck.Fatal(err)
	}
	if _, err := ck.expectEcho(holder, []byte(string(start)+", now complete\n")); err != nil {
		ck.Fatalf("the line held incomplete, once completed: %v", err)
	}
}
