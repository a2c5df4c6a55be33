package conformance

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/domtest"
)

// TestTranscriptKeepsFirstAndLast tests that a long check's transcript
// keeps its first and last events and counts those it left out.
func TestTranscriptKeepsFirstAndLast(t *testing.T) {
	tr := &transcript{start: time.Now()}
	for i := 1; i <= 300; i++ {
		tr.add(i, "send", []byte("x"), 1)
	}
	events, dropped := tr.snapshot()
	require.Len(t, events, keepHead+keepTail)
	require.Equal(t, 300-keepHead-keepTail, dropped)
	require.Equal(t, 1, events[0].Conn)
	require.Equal(t, keepHead, events[keepHead-1].Conn)
	require.Equal(t, 300-keepTail+1, events[keepHead].Conn)
	require.Equal(t, 300, events[len(events)-1].Conn)
	require.Equal(t, "conn 300 send 1 bytes", tr.lastStep())
}

// TestTranscriptRecordsReplies tests that checking a reply keeps the
// handler its {pid} named and, when it is wrong, the bytes around the
// first difference.
func TestTranscriptRecordsReplies(t *testing.T) {
	tmpl := echo.MustParseTemplate("{pid}: ")
	tr := &transcript{start: time.Now()}
	_, err := tr.verify(1, tmpl, []byte("41: hello"), []byte("hello"))
	require.NoError(t, err)
	require.Nil(t, tr.lastMismatch())
	_, err = tr.verify(2, tmpl, []byte("42: heXlo"), []byte("hello"))
	require.Error(t, err)
	require.Equal(t, []ConnInfo{{1, 41}, {2, 42}}, tr.conns())
	m := tr.lastMismatch()
	require.Equal(t, &Mismatch{Conn: 2, Prefix: "42: ", SentLen: 5, ReceivedLen: 5, Offset: 2, Start: 0,
		Sent: []byte("hello"), Received: []byte("heXlo")}, m)

	// A long echo that ends early: the window starts before the end.
	want := bytes.Repeat([]byte{'a'}, 5000)
	_, err = tr.verify(3, tmpl, append([]byte("43: "), want[:4000]...), want)
	require.Error(t, err)
	m = tr.lastMismatch()
	require.Equal(t, 4000, m.Offset)
	require.Equal(t, 4000-mismatchBefore, m.Start)
	require.Len(t, m.Received, mismatchBefore)
	require.Len(t, m.Sent, mismatchWindow)
}

// TestTranscriptSawChildren tests that the children the harness saw come
// and go are events.
func TestTranscriptSawChildren(t *testing.T) {
	tr := &transcript{start: time.Now()}
	tr.sawChildren(nil)
	tr.sawChildren([]int{5, 6})
	tr.sawChildren([]int{6})
	tr.sawChildren([]int{6})
	events, _ := tr.snapshot()
	var got []string
	for _, e := range events {
		got = append(got, fmt.Sprintf("%s %d", e.Op, e.PID))
	}
	require.Equal(t, []string{"fork 5", "fork 6", "exit 5"}, got)
}

// sampleReport is a report with every kind of result the HTML report
// draws: a failure with a transcript over two connections handled by two
// children, a pass with LEAK's rounds, CONC-2's curve and a process tree,
// and a skip.
func sampleReport() *Report {
	ev := func(ms int, conn int, op string, n int, pid int) Event {
		return Event{At: time.Duration(ms) * time.Millisecond, Conn: conn, Op: op, N: n, PID: pid}
	}
	return &Report{
		Target:    "command ./server {port}",
		Transport: "tcp",
		Options:   ReportOptions{Protocol: "stream", Prefix: "{pid}: ", MaxMsg: 1024, Model: ModelFork, Concurrency: 64, TimeScale: 1, Checks: 20, ShrinkTime: time.Second},
		Duration:  3 * time.Second,
		Results: []Result{
			{ID: "STREAM-1", Level: MUST, Title: "echo", Verdict: Fail, Duration: time.Second, Seed: 7,
				Message: "conn 2: the echo differs at offset 2", Counterexample: "conn 2 sends \"abc\"",
				ServerPID: 100, Conns: []ConnInfo{{1, 101}, {2, 102}},
				Transcript: []Event{ev(1, 0, "fork", 0, 101), ev(2, 1, "connect", 0, 0), ev(3, 2, "connect", 0, 0), ev(4, 0, "fork", 0, 102),
					ev(5, 1, "send", 3, 0), ev(6, 1, "recv", 8, 0), ev(7, 2, "send", 3, 0), ev(8, 2, "half-close", 0, 0), ev(9, 2, "recv", 7, 0),
					ev(10, 2, "eof", 0, 0), ev(11, 1, "reset", 0, 0), ev(12, 2, "timeout", 0, 0), ev(13, 0, "exit", 0, 101)},
				TranscriptDropped: 3,
				Mismatch:          &Mismatch{Conn: 2, Prefix: "102: ", SentLen: 3, ReceivedLen: 2, Offset: 2, Sent: []byte("abc"), Received: []byte("ab")},
				ServerOutput:      "\nlast lines the server wrote:\n  | hello"},
			{ID: "LEAK-2", Level: MUST, Title: "descriptors", Verdict: Pass, Duration: time.Second, ServerPID: 100,
				Figures: &Figures{Rounds: []Reading{{Label: "at rest before", FDs: 8, Threads: 5}, {Label: "after round 1", Connections: 16, FDs: 9, Threads: 5, Children: 1},
					{Label: "after round 2", Connections: 32, FDs: 9, Threads: 6, Goroutines: 12}}}},
			{ID: "CONC-2", Level: SHOULD, Title: "concurrency", Verdict: Pass, Duration: time.Second, Message: "sustained 64 of 64",
				Figures: &Figures{Concurrency: []ConcSample{{At: time.Millisecond, Open: 4, Accepted: 4}, {At: 2 * time.Millisecond, Open: 8, Accepted: 8},
					{At: 3 * time.Millisecond, Open: 8, Accepted: 8, Served: 1}}}},
			{ID: "MODEL-1", Level: MUST, Title: "model", Verdict: Pass, Duration: time.Second,
				Figures: &Figures{Trees: []ProcessTree{{Label: "at rest", Procs: []Process{{PID: 100, PPID: 1, Comm: "server", State: "S"}}},
					{Label: "under load: 2 connections open", Procs: []Process{{PID: 100, PPID: 1, Comm: "server", State: "S"},
						{PID: 101, PPID: 100, Comm: "server", State: "S"}, {PID: 102, PPID: 100, Comm: "server", State: "R"}}, More: 1}}}},
			{ID: "SHUT-5", Level: SHOULD, Title: "exit status", Verdict: Skip, Message: "not a command"},
		},
	}
}

// TestReportJSONSchema tests that every field the report model carries is
// in the schema, which forbids properties it does not name.
func TestReportJSONSchema(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, []*Report{sampleReport()}, false))
	schema, err := jsonschema.NewCompiler().Compile("../testdata/report.schema.json")
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(&b)
	require.NoError(t, err)
	require.NoError(t, schema.Validate(doc))
}

// TestWriteHTML tests the page's structure: a row per requirement, the
// failure's diagram with a lane per connection and per process, the first
// differing byte marked, the figures of a pass folded, and nothing that
// would make a request.
func TestWriteHTML(t *testing.T) {
	rep := sampleReport()
	var b bytes.Buffer
	require.NoError(t, rep.WriteHTML(&b))
	doc, err := domtest.Parse(&b)
	require.NoError(t, err)

	require.Equal(t, "default-src 'none'; style-src 'unsafe-inline'; img-src data:", domtest.CSP(doc))
	require.Empty(t, domtest.Requests(doc))
	require.Empty(t, domtest.All(doc, domtest.Tag("script")), "the page needs no script")
	require.Contains(t, domtest.Text(domtest.ByID(doc, "exit-status")), "exit status 1")

	for _, r := range rep.Results {
		row := domtest.ByID(doc, "r0-"+r.ID)
		require.NotNil(t, row, r.ID)
		require.Equal(t, shownVerdict(r, false), domtest.Attr(row, "data-verdict"))
		req, _ := requirement(r.ID)
		require.Equal(t, "#spec-"+r.ID, domtest.Attr(domtest.All(row, domtest.Tag("a"))[0], "href"))
		spec := domtest.ByID(doc, "spec-"+r.ID)
		require.NotNil(t, spec, r.ID)
		require.Equal(t, req.Text, domtest.Text(spec.NextSibling))
	}

	fail := domtest.ByID(doc, "r0-STREAM-1-d")
	require.NotNil(t, fail)
	svgs := domtest.All(fail, domtest.Tag("svg", "seq"))
	require.Len(t, svgs, 1)
	var conns, procs []string
	for _, g := range domtest.All(svgs[0], domtest.Tag("g", "lane")) {
		if c := domtest.Attr(g, "data-conn"); c != "" {
			conns = append(conns, c)
		} else {
			procs = append(procs, domtest.Attr(g, "data-pid"))
		}
	}
	require.Equal(t, []string{"1", "2"}, conns)
	culprit := domtest.All(svgs[0], domtest.Tag("g", "lane", "culprit"))
	require.Len(t, culprit, 1)
	require.Equal(t, "2", domtest.Attr(culprit[0], "data-conn"), "the connection whose echo went wrong")
	require.Equal(t, []string{"100", "101", "102"}, procs)
	evs := domtest.All(svgs[0], domtest.Tag("g", "ev"))
	require.Len(t, evs, len(rep.Results[0].Transcript)+1, "an event a row, and a row for those not kept")
	require.Contains(t, domtest.Text(svgs[0]), "… 3 events not kept …")
	require.Len(t, domtest.All(svgs[0], domtest.Tag("g", "rst")), 1)

	marks := domtest.All(fail, domtest.Tag("mark"))
	require.Len(t, marks, 2)
	require.Equal(t, "c", domtest.Text(marks[0]), "sent: the first byte that did not come back")
	require.Equal(t, "∅", domtest.Text(marks[1]), "received: nothing there")
	require.Contains(t, domtest.Text(fail), "reproduce: echoconform -run '^STREAM-1$' -seed=7 -protocol=stream -model=fork -prefix='{pid}: ' -- ./server {port}")
	require.Equal(t, "reproduce the run: echoconform -protocol=stream -model=fork -prefix='{pid}: ' -- ./server {port}", domtest.Text(domtest.ByID(doc, "command")))

	for _, id := range []string{"LEAK-2", "CONC-2", "MODEL-1"} {
		d := domtest.ByID(doc, "r0-"+id+"-d")
		require.NotNil(t, d, id)
		require.Equal(t, "details", d.Data, "%s: a pass's figures are folded", id)
		require.False(t, domtest.HasAttr(d, "open"), id)
	}
	require.Len(t, domtest.All(domtest.ByID(doc, "r0-LEAK-2-d"), domtest.Tag("line", "base")), 5, "a baseline per series, goroutines included")
	require.Len(t, domtest.All(domtest.ByID(doc, "r0-CONC-2-d"), domtest.Tag("polyline")), 3)
	trees := domtest.All(domtest.ByID(doc, "r0-MODEL-1-d"), domtest.Tag("div", "tree"))
	require.Len(t, trees, 2)
	require.Len(t, domtest.All(trees[1], domtest.Tag("li")), 3)
	require.Nil(t, domtest.ByID(doc, "r0-SHUT-5-d"), "a skip has nothing to show")
}

// TestWriteHTMLEscapes tests that what a server sent cannot become markup.
func TestWriteHTMLEscapes(t *testing.T) {
	rep := sampleReport()
	rep.Results[0].Message = `<script>alert(1)</script><img src="http://example.invalid/x">`
	rep.Results[0].ServerOutput = `<link rel=stylesheet href="https://example.invalid/x.css">`
	rep.Results[0].Mismatch.Received = []byte(`<b>`)
	var b bytes.Buffer
	require.NoError(t, WriteHTML(&b, []*Report{rep}, HTMLOptions{Command: `echoconform -- "<i>"`}))
	doc, err := domtest.Parse(strings.NewReader(b.String()))
	require.NoError(t, err)
	require.Empty(t, domtest.Requests(doc))
	require.Empty(t, domtest.All(doc, func(n *html.Node) bool {
		return n.Data == "script" || n.Data == "img" || n.Data == "b" || n.Data == "i"
	}))
}
