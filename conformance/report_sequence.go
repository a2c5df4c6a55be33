package conformance

import (
	"fmt"
	"slices"
)

// A sequence diagram of a check's transcript: a lane per connection on the
// left, the server's processes on the right (the server, then each child
// the harness saw or a reply named), and an event per row in time order.
// Bytes go from a connection's lane to the lane of the process that handled
// it (the server's when no reply named one) and back.

type seqDiagram struct {
	Width, Height int
	Lanes         []seqLane
	Rows          []seqRow
	Conns         int
	Culprit       int // the connection whose echo went wrong, or 0
}

type seqLane struct {
	X, Top, Bottom int
	Class          string // conn, server, child
	Label, Sub     string
	Conn, PID      int
}

type seqRow struct {
	Y         int
	Time      string
	Arrow     bool
	X1, X2    int
	Class     string // what CSS draws it as
	Label     string
	LX        int
	Anchor    string // text-anchor of the label
	Title     string // the whole event, on hover
	GapWidth  int    // a row of events not kept: its width
	GapHeight int
}

// The arrows of a connection's events: towards the server, and back.
var (
	toServer = map[string][2]string{"connect": {"conn", "connect"}, "send": {"send", "send"},
		"half-close": {"fin", "FIN (half-close)"}, "reset": {"rst", "RST"}, "close": {"fin", "close"}}
	toClient = map[string][2]string{"recv": {"recv", "recv"}, "eof": {"fin", "EOF"}, "server-reset": {"rst", "RST"}}
)

const (
	seqGutter = 70  // time labels
	seqLaneW  = 104 // between lanes
	seqTop    = 48  // lane headers
	seqRowH   = 18
)

func buildDiagram(res Result) *seqDiagram {
	d := &seqDiagram{}
	events := res.Transcript
	handler := map[int]int{}
	for _, c := range res.Conns {
		handler[c.Conn] = c.PID
	}
	var conns, kids []int
	for _, e := range events {
		switch {
		case e.Conn > 0 && !slices.Contains(conns, e.Conn):
			conns = append(conns, e.Conn)
		case e.Conn == 0 && e.PID > 0 && e.PID != res.ServerPID && !slices.Contains(kids, e.PID):
			kids = append(kids, e.PID)
		}
	}
	slices.Sort(conns)
	for _, c := range conns {
		if pid := handler[c]; pid > 0 && pid != res.ServerPID && !slices.Contains(kids, pid) {
			kids = append(kids, pid)
		}
	}
	// The server on the left; each connection's lane right of the lane of
	// the child that handled it, so that its arrows are short; the children
	// no reply named after the server.
	laneX := func(i int) int { return seqGutter + seqLaneW/2 + i*seqLaneW }
	connLane, procLane := map[int]int{}, map[int]int{}
	addProc := func(class, label string, pid int) {
		l := seqLane{X: laneX(len(d.Lanes)), Class: class, Label: label, PID: pid}
		if pid > 0 {
			l.Sub = fmt.Sprintf("pid %d", pid)
		}
		procLane[pid] = len(d.Lanes)
		d.Lanes = append(d.Lanes, l)
	}
	addProc("server", "server", res.ServerPID)
	serverLane := 0
	handlers := map[int]bool{}
	for _, c := range conns {
		handlers[handler[c]] = true
	}
	for _, k := range kids {
		if !handlers[k] {
			addProc("child", "child", k)
		}
	}
	for _, c := range conns {
		if pid := handler[c]; pid > 0 {
			if _, ok := procLane[pid]; !ok {
				addProc("child", "child", pid)
			}
		}
		l := seqLane{X: laneX(len(d.Lanes)), Class: "conn", Label: fmt.Sprintf("conn %d", c), Conn: c}
		if res.Mismatch != nil && res.Mismatch.Conn == c {
			l.Class = "conn culprit" // the one whose echo went wrong
		}
		if pid := handler[c]; pid > 0 {
			l.Sub = fmt.Sprintf("to %d", pid)
		}
		connLane[c] = len(d.Lanes)
		d.Lanes = append(d.Lanes, l)
	}
	d.Conns = len(conns)
	if res.Mismatch != nil && slices.Contains(conns, res.Mismatch.Conn) {
		d.Culprit = res.Mismatch.Conn
	}
	d.Width = laneX(len(d.Lanes)-1) + seqLaneW/2 + 10

	// The process end of a connection's arrows.
	peer := func(c int) int {
		if l, ok := procLane[handler[c]]; ok && handler[c] > 0 {
			return l
		}
		return serverLane
	}
	y := seqTop
	first, last := map[int]int{}, map[int]int{}
	firstOp, lastOp := map[int]string{}, map[int]string{}
	seen := func(lane, y int, op string) {
		if _, ok := first[lane]; !ok {
			first[lane], firstOp[lane] = y, op
		}
		last[lane], lastOp[lane] = y, op
	}
	// The events left out were between the first keepHead and the rest.
	gapAt := min(keepHead, len(events)-1)
	for i, e := range events {
		if i == gapAt && res.TranscriptDropped > 0 {
			y += seqRowH
			d.Rows = append(d.Rows, seqRow{Y: y, Class: "gap", LX: d.Width / 2, Anchor: "middle", GapWidth: d.Width, GapHeight: seqRowH,
				Label: fmt.Sprintf("… %d events not kept …", res.TranscriptDropped)})
		}
		y += seqRowH
		r := seqRow{Y: y, Time: fmt.Sprintf("+%.3fs", e.At.Seconds()), Title: e.String()}
		label := func(s string) string {
			if e.N > 0 {
				return fmt.Sprintf("%s %d B", s, e.N)
			}
			return s
		}
		if e.Conn > 0 {
			cl, pl := connLane[e.Conn], peer(e.Conn)
			seen(cl, y, e.Op)
			if s, ok := toServer[e.Op]; ok {
				r.Arrow, r.X1, r.X2, r.Class, r.Label = true, d.Lanes[cl].X, d.Lanes[pl].X, s[0], label(s[1])
			} else if s, ok := toClient[e.Op]; ok {
				r.Arrow, r.X1, r.X2, r.Class, r.Label = true, d.Lanes[pl].X, d.Lanes[cl].X, s[0], label(s[1])
			} else {
				r.X1, r.Class, r.Label = d.Lanes[cl].X, "mark "+e.Op, e.Op
			}
		} else {
			pl := serverLane
			if l, ok := procLane[e.PID]; ok {
				pl = l
			}
			seen(pl, y, e.Op)
			r.X1, r.Class, r.Label = d.Lanes[pl].X, "mark proc", e.Op+" (seen)"
		}
		if r.Arrow {
			// Beside the connection's lane, which an arrow always ends or
			// starts at: visible however far its process's lane is.
			r.LX, r.Anchor = d.Lanes[connLane[e.Conn]].X-8, "end"
		} else {
			r.LX, r.Anchor = r.X1+7, "start"
		}
		d.Rows = append(d.Rows, r)
	}
	d.Height = y + seqRowH
	for i := range d.Lanes {
		l := &d.Lanes[i]
		l.Top, l.Bottom = seqTop, d.Height-4
		switch l.Class {
		case "conn":
			l.Top, l.Bottom = first[i]-seqRowH/2, last[i]+seqRowH/2
		case "child":
			// A child lives from the row where it was seen first to the
			// row where it was seen gone; one there when the transcript
			// begins or ends runs to the edge.
			if firstOp[i] == "fork" {
				l.Top = first[i]
			}
			if lastOp[i] == "exit" {
				l.Bottom = last[i]
			}
		}
	}
	return d
}
