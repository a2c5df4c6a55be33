package load_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/threading"
	"github.com/echoconform/echoconform/internal/load"
	"github.com/echoconform/echoconform/internal/proc"
	"github.com/echoconform/echoconform/internal/testserver"
)

// envServe makes the test binary a small echo server on $PORT (for
// TestLaunch): it exits 0 on SIGTERM.
const envServe = "LOAD_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(envServe) != "" {
		os.Exit(testserver.ServePORT(threading.New(echo.Config{})))
	}
	goleak.VerifyTestMain(m)
}

var pidPrefix = echo.MustParseTemplate("{pid}: ")

// startThreading serves cfg with the threading reference until the test
// ends.
func startThreading(t *testing.T, cfg echo.Config) string {
	t.Helper()
	return testserver.Serve(t, threading.New(cfg))
}

func TestExchange(t *testing.T) {
	addr := startThreading(t, echo.Config{Protocol: echo.Stream, Prefix: pidPrefix})
	for _, size := range []int64{1, 64, 100 << 10} { // the last is written while the echo is read
		t.Run(fmt.Sprintf("bytes=%d", size), func(t *testing.T) {
			res, err := load.Run(context.Background(), load.Config{Addr: addr, Clients: 4, Prefix: pidPrefix, Bytes: size, Count: 100})
			require.NoError(t, err)
			require.EqualValues(t, 100, res.Exchanges)
			require.Equal(t, 100*size, res.Bytes)
			require.EqualValues(t, 100, res.Samples)
			require.Positive(t, res.P50)
			require.LessOrEqual(t, res.P50, res.P99)
			require.LessOrEqual(t, res.P99, res.Max)
			require.Positive(t, res.PerSec())
			require.Contains(t, res.String(), "100 exchanges")
		})
	}
}

func TestStream(t *testing.T) {
	addr := startThreading(t, echo.Config{Protocol: echo.Stream, Prefix: pidPrefix})
	res, err := load.Run(context.Background(), load.Config{Addr: addr, Mode: load.Stream, Clients: 3, Prefix: pidPrefix, Bytes: 3<<20 + 17, Chunk: 7777})
	require.NoError(t, err)
	require.EqualValues(t, 3, res.Exchanges, "streams completed")
	require.EqualValues(t, 3*(3<<20+17), res.Bytes)
	require.Positive(t, res.MBPerSec())
	require.Positive(t, res.Samples, "latency of the writes")
}

func TestStreamForDuration(t *testing.T) {
	// The run ends on its own when the duration is up: no count bounds
	// it, and the streams are unbounded. (How long they take to end after
	// that is the machine's business: the go test timeout guards a hang.)
	addr := startThreading(t, echo.Config{Protocol: echo.Stream})
	res, err := load.Run(context.Background(), load.Config{Addr: addr, Mode: load.Stream, Clients: 2, Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond})
	require.NoError(t, err)
	require.Positive(t, res.Bytes)
	require.GreaterOrEqual(t, res.Elapsed, 200*time.Millisecond, "the measurement ended before the duration")
	require.Zero(t, res.Exchanges, "a stream cut short by the duration is not a completed stream")
}

func TestOneshot(t *testing.T) {
	addr := startThreading(t, echo.Config{Protocol: echo.Oneshot, Prefix: pidPrefix, MaxMsg: 512})
	res, err := load.Run(context.Background(), load.Config{Addr: addr, Protocol: echo.Oneshot, Prefix: pidPrefix, Bytes: 512, MaxMsg: 512, Clients: 2, Count: 50})
	require.NoError(t, err)
	require.EqualValues(t, 50, res.Exchanges)

	// Without a half-close the server answers after its quiet period.
	res, err = load.Run(context.Background(), load.Config{Addr: addr, Protocol: echo.Oneshot, Prefix: pidPrefix, Bytes: 10, MaxMsg: 512, NoHalfClose: true, Count: 2})
	require.NoError(t, err)
	require.GreaterOrEqual(t, res.P50, echo.DefaultQuiet)
}

func TestDurationAndRate(t *testing.T) {
	// Counts, not the clock: the pacing lets client i start its exchange
	// k no earlier than (i/clients + k)/rate after the start, so however
	// fast or slow the machine, no more than rate × (time the run lasted)
	// + clients exchanges can have started, let alone completed. An
	// unpaced run against a local server makes hundreds in that time.
	addr := startThreading(t, echo.Config{Protocol: echo.Stream})
	const rate, clients = 100, 2
	start := time.Now()
	res, err := load.Run(context.Background(), load.Config{Addr: addr, Clients: clients, Duration: 300 * time.Millisecond, Rate: rate})
	lasted := time.Since(start)
	require.NoError(t, err)
	require.GreaterOrEqual(t, res.Elapsed, 300*time.Millisecond, "the measurement ended before the duration")
	require.LessOrEqual(t, res.Elapsed, lasted)
	require.LessOrEqual(t, float64(res.Exchanges), rate*lasted.Seconds()+clients,
		"%d exchanges in a run of %v paced at %d/s", res.Exchanges, lasted, rate)
	require.EqualValues(t, res.Exchanges, res.Samples, "one latency sample per measured exchange")
}

func TestContextCanceled(t *testing.T) {
	addr := startThreading(t, echo.Config{Protocol: echo.Stream})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := load.Run(ctx, load.Config{Addr: addr, Clients: 2, Duration: time.Minute})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestBrokenServers tests that the verification catches servers that lose,
// add, alter or hold back bytes.
func TestBrokenServers(t *testing.T) {
	var hang chan struct{} // a server that never answers waits for it
	echoAll := func(c *net.TCPConn, transform func([]byte) []byte) {
		b, err := io.ReadAll(c)
		if err != nil {
			return
		}
		_, _ = c.Write(transform(b))
		_ = c.CloseWrite()
	}
	for _, tc := range []struct {
		name   string
		handle func(c *net.TCPConn)
		cfg    load.Config
		want   string
	}{
		{"drops a byte", func(c *net.TCPConn) {
			echoAll(c, func(b []byte) []byte {
				if len(b) <= 10 {
					return b // a connection the load ended before it sent its message
				}
				return append(b[:10:10], b[11:]...)
			})
		}, load.Config{Bytes: 64}, "differs at offset 10 of 64 bytes sent"},
		{"adds a byte", func(c *net.TCPConn) {
			echoAll(c, func(b []byte) []byte { return append(b, 'x') })
		}, load.Config{Bytes: 64}, "1 extra bytes came back after the 64 sent"},
		{"cuts the echo", func(c *net.TCPConn) {
			echoAll(c, func(b []byte) []byte { return b[:len(b)/2] })
		}, load.Config{Bytes: 64}, "only 32 of the 64 bytes sent came back"},
		{"answers with another client's bytes", func(c *net.TCPConn) {
			echoAll(c, func(b []byte) []byte { return []byte(fmt.Sprintf("%064d", 7)) })
		}, load.Config{Bytes: 64}, "differs at offset 0 of 64 bytes sent"},
		{"wrong prefix", func(c *net.TCPConn) {
			echoAll(c, func(b []byte) []byte { return append([]byte("pid: "), b...) })
		}, load.Config{Bytes: 64, Prefix: pidPrefix}, "want a decimal {pid}"},
		{"never answers", func(c *net.TCPConn) {
			_, _ = io.Copy(io.Discard, c)
			<-hang // until the test ends
		}, load.Config{Bytes: 64, Timeout: 200 * time.Millisecond}, "i/o timeout"},
		{"stream: flips a bit far in", func(c *net.TCPConn) {
			buf := make([]byte, 64<<10)
			var off int64
			for {
				n, err := c.Read(buf)
				for i := range buf[:n] {
					if off+int64(i) == 1<<20+3 {
						buf[i] ^= 1
					}
				}
				off += int64(n)
				if _, werr := c.Write(buf[:n]); werr != nil || err != nil {
					_ = c.CloseWrite()
					return
				}
			}
		}, load.Config{Mode: load.Stream, Bytes: 2 << 20}, fmt.Sprintf("differs at offset %d of", 1<<20+3)},
		{"stream: ends the echo early", func(c *net.TCPConn) {
			_, _ = io.CopyN(c, c, 100<<10)
			_ = c.CloseWrite()
			_, _ = io.Copy(io.Discard, c)
		}, load.Config{Mode: load.Stream, Bytes: 1 << 20}, "EOF after 102400 bytes of the echo, 1048576 sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			hang = make(chan struct{})
			cfg.Addr = testserver.Handle(t, tc.handle)
			t.Cleanup(func() { close(hang) }) // before the server's cleanup
			cfg.Clients = 2
			if cfg.Mode == load.Exchange {
				cfg.Count = 20
			}
			_, err := load.Run(context.Background(), cfg)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.Contains(t, err.Error(), "client ")
		})
	}
}

func TestValidate(t *testing.T) {
	ok := load.Config{Addr: "127.0.0.1:7", Count: 1}
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		cfg  load.Config
		want string
	}{
		{load.Config{Addr: "10.1.2.3:7", Count: 1}, "not on loopback"},
		{load.Config{Addr: "example.com:7", Count: 1}, "not on loopback"},
		{load.Config{Addr: "127.0.0.1", Count: 1}, "bad address"},
		{load.Config{Addr: "127.0.0.1:0", Count: 1}, "no port"},
		{load.Config{Addr: "127.0.0.1:7"}, "unbounded"},
		{load.Config{Addr: "127.0.0.1:7", Mode: load.Stream, Protocol: echo.Oneshot, Duration: time.Second}, "stream mode needs"},
		{load.Config{Addr: "127.0.0.1:7", Protocol: echo.Oneshot, Bytes: 2000, Count: 1}, "exceeds max-msg 1024"},
		{load.Config{Addr: "127.0.0.1:7", Mode: load.Stream, Count: 3, Duration: time.Second}, "count applies to exchange"},
		{load.Config{Addr: "127.0.0.1:7", Rate: 10, Mode: load.Stream, Duration: time.Second}, "rate"},
		{load.Config{Addr: "127.0.0.1:7", NoHalfClose: true, Count: 1}, "oneshot protocol only"},
		{load.Config{Addr: "127.0.0.1:7", Clients: -1, Count: 1}, "clients"},
	} {
		err := tc.cfg.Validate()
		require.Error(t, err, "%+v", tc.cfg)
		require.Contains(t, err.Error(), tc.want)
		_, err = load.Run(context.Background(), tc.cfg)
		require.Error(t, err)
	}
	for _, a := range []string{"localhost:7", "[::1]:7", "127.8.9.10:7"} {
		require.NoError(t, load.CheckLoopback(a))
	}
	m, err := load.ParseMode("stream")
	require.NoError(t, err)
	require.Equal(t, load.Stream, m)
	_, err = load.ParseMode("burst")
	require.Error(t, err)
}

// TestLaunch tests that a launched server is ready when Launch returns and
// that Stop ends it and reaps it.
func TestLaunch(t *testing.T) {
	t.Setenv(envServe, "1")
	p, err := load.Launch(context.Background(), []string{os.Args[0], "-test.run=^$", "{addr}", "{port}"}, io.Discard, 10*time.Second)
	require.NoError(t, err)
	res, err := load.Run(context.Background(), load.Config{Addr: p.Addr, Count: 10})
	require.NoError(t, err)
	require.EqualValues(t, 10, res.Exchanges)
	require.NoError(t, p.Stop(5*time.Second), "the server exits 0 on SIGTERM")
	_, err = proc.Read(p.PID)
	require.Error(t, err, "process %d remains after Stop", p.PID)

	_, err = load.Launch(context.Background(), []string{"/bin/false"}, io.Discard, 10*time.Second)
	require.ErrorContains(t, err, "exited")
	_, err = load.Launch(context.Background(), []string{"/no/such/server"}, io.Discard, time.Second)
	require.Error(t, err)
	_, err = load.Launch(context.Background(), []string{"/bin/sleep", "60"}, io.Discard, 100*time.Millisecond)
	require.ErrorContains(t, err, "did not listen")
}
