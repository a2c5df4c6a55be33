package conformance

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/echoconform/echoconform/echo"
)

// FuzzVerifyReply tests that the response checker classifies any reply
// without panicking and agrees with a simple oracle: a reply passes exactly
// when it is some rendering of the template followed by the bytes sent.
func FuzzVerifyReply(f *testing.F) {
	f.Add("{pid}: ", []byte("123: hello"), []byte("hello"))
	f.Add("{ppid} :", []byte("7 :x"), []byte("x"))
	f.Add("", []byte("hello!"), []byte("hello"))
	f.Add("[{pid}/{ppid}] ", []byte("[1/2] \x00\xff"), []byte("\x00\xff"))
	f.Add("{pid}: ", []byte("0123: hi"), []byte("hi"))
	f.Fuzz(func(t *testing.T, src string, reply, sent []byte) {
		tmpl, err := echo.ParseTemplate(src)
		if err != nil {
			return
		}
		v, err := verifyReply(tmpl, reply, sent)
		mv, n, merr := tmpl.Match(reply)
		oracle := merr == nil && bytes.Equal(reply[:n], tmpl.Render(mv.PID, mv.PPID)) && bytes.Equal(reply[n:], sent)
		if (err == nil) != oracle {
			t.Fatalf("template %q, reply %q, sent %q: verifyReply says %v, the oracle says pass=%v", src, reply, sent, err, oracle)
		}
		if err == nil && v != mv {
			t.Fatalf("values %+v, Match says %+v", v, mv)
		}
		// Every leading part of a passing reply is a valid partial reply.
		if err == nil {
			for _, k := range []int{0, len(reply) / 3, len(reply) / 2, len(reply) - 1} {
				if k >= 0 && k <= len(reply) {
					if perr := verifyPartial(tmpl, reply[:k], sent); perr != nil {
						t.Fatalf("leading %d bytes of a passing reply rejected: %v", k, perr)
					}
				}
			}
		}
		_ = show(reply)
	})
}

// FuzzExpandArgs tests the command line placeholders: none survives, and
// arguments without them pass unchanged.
func FuzzExpandArgs(f *testing.F) {
	f.Add("python3", "server.py", "{port}", "--bind={addr}")
	f.Add("{{port}}", "{port", "port}", "{addr}{port}")
	f.Fuzz(func(t *testing.T, a, b, c, d string) {
		in := []string{a, b, c, d}
		out := expandArgs(in, 40123)
		for i := range in {
			if strings.Contains(out[i], "{port}") || strings.Contains(out[i], "{addr}") {
				t.Fatalf("%q became %q: a placeholder survived", in[i], out[i])
			}
			if !strings.Contains(in[i], "{port}") && !strings.Contains(in[i], "{addr}") && out[i] != in[i] {
				t.Fatalf("%q changed to %q without a placeholder", in[i], out[i])
			}
		}
	})
}

// fakeServer is a misbehaving server driven by fuzz input: for each
// connection it reads what the client sends, answers with the scripted
// bytes and then ends as scripted. One listener serves a whole fuzz
// process; each input scripts the next connection.
type fakeServer struct {
	addr   string
	script chan fakeScript
}

type fakeScript struct {
	reply []byte
	end   byte // 0 close, 1 half-close and hold, 2 reset, 3 hold without closing
}

func startFake(f *testing.F) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	fs := &fakeServer{addr: ln.Addr().String(), script: make(chan fakeScript, 1)}
	var wg sync.WaitGroup
	f.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s := <-fs.script
			wg.Add(1)
			go func() {
				defer wg.Done()
				tc := c.(*net.TCPConn)
				_ = tc.SetDeadline(time.Now().Add(2 * time.Second))
				buf := make([]byte, 4096)
				_, _ = tc.Read(buf) // the client's message (or its first part)
				_, _ = tc.Write(s.reply)
				switch s.end % 4 {
				case 1:
					_ = tc.CloseWrite()
					_, _ = tc.Read(buf)
				case 2:
					_ = tc.SetLinger(0)
				case 3:
					_, _ = tc.Read(buf) // until the client gives up
				}
				tc.Close()
			}()
		}
	}()
	return fs
}

// FuzzHarnessVerdict tests the harness against a misbehaving server: the
// exchange ends within its bound, and it never passes a reply that is not
// the prefix followed by the bytes sent.
func FuzzHarnessVerdict(f *testing.F) {
	f.Add([]byte("hello"), []byte("42: hello"), byte(0))
	f.Add([]byte("hello"), []byte("42: hell"), byte(1))
	f.Add([]byte("hello"), []byte("42: hello!"), byte(0))
	f.Add([]byte("hello"), []byte("garbage"), byte(2))
	f.Add([]byte("hello"), []byte(""), byte(3))
	fs := startFake(f)
	addr := fs.addr
	f.Fuzz(func(t *testing.T, sent, reply []byte, end byte) {
		if len(sent) == 0 || len(sent) > 1024 || len(reply) > 4096 {
			return
		}
		o, _ := buildOptions([]Option{ExpectPrefix(echo.MustParseTemplate("{pid}: ")), TimeScale(0.1)})
		rec := &recorder{name: "fuzz"}
		ep, _ := parseAddress(addr)
		ck := &checker{TB: rec, rec: rec, o: &o, target: Address(addr), ctx: context.Background(),
			in: &instance{ep: ep, o: &o}}
		ck.tr.start = time.Now()
		fs.script <- fakeScript{reply: reply, end: end}
		c, err := ck.dial()
		if err != nil {
			<-fs.script
			t.Skip("connect failed:", err)
		}
		defer c.close()
		start := time.Now()
		_, err = ck.exchange(c, sent)
		if took := time.Since(start); took > 3*o.d() {
			t.Fatalf("the exchange took %v, bound %v", took, 3*o.d())
		}
		_, _, merr := o.prefix.Match(reply)
		correct := merr == nil && bytes.HasSuffix(reply, sent) && verifyOK(o.prefix, reply, sent)
		if err == nil && !correct {
			t.Fatalf("PASS for reply %q to %q", reply, sent)
		}
	})
}

func verifyOK(t echo.Template, reply, sent []byte) bool {
	v, n, err := t.Match(reply)
	return err == nil && bytes.Equal(reply[:n], t.Render(v.PID, v.PPID)) && bytes.Equal(reply[n:], sent)
}
