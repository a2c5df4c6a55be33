// Command table is the comparison of `make bench`: it starts each server
// as a process of its own (the baseline io.Copy echo, both references,
// and, where installed, Python socketserver and socat), drives each with
// the same load generator (internal/load, every byte verified), and
// prints every figure with its ratio to the baseline measured in the same
// run, then the goals of issues 7 and 12 as ratios.
//
//	go run ./bench/table -bin DIR [-rounds 5] [-duration 0.6s]
//
// DIR holds the binaries baseline, echoserver and echochild (see
// bench/run.sh). Each round measures every server once, servers in turn;
// a figure is the median of its rounds, so that a burst of load from
// elsewhere on the machine moves one round, not the result.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/load"
)

// server is one row of the table.
type server struct {
	key      string
	name     string
	argv     []string
	protocol echo.Protocol
	prefix   string
	needs    string // the program that must be installed
}

// metric is one column.
type metric struct {
	key     string
	title   string
	mode    load.Mode
	clients int
	value   func(load.Result) float64
	unit    string
	lower   bool // lower is better (latency)
}

var metrics = []metric{
	{"mbs1", "stream MB/s, 1 conn", load.Stream, 1, load.Result.MBPerSec, "", false},
	{"mbs8", "stream MB/s, 8 conns", load.Stream, 8, load.Result.MBPerSec, "", false},
	{"ex1", "exchanges/s, 1 client", load.Exchange, 1, load.Result.PerSec, "", false},
	{"ex8", "exchanges/s, 8 clients", load.Exchange, 8, load.Result.PerSec, "", false},
	{"p50", "p50, 1 client", load.Exchange, 1, func(r load.Result) float64 { return float64(r.P50) / 1e3 }, "µs", true},
	{"p99", "p99, 1 client", load.Exchange, 1, func(r load.Result) float64 { return float64(r.P99) / 1e3 }, "µs", true},
	{"p50paced", "p50, 1 client at 200/s", load.Exchange, 1, func(r load.Result) float64 { return float64(r.P50) / 1e3 }, "µs", true},
	{"cpu8", "server CPU per exchange, 8 clients", load.Exchange, 8, nil, "µs", true},
}

// pacedRate is the rate of the paced latency column: below what every
// server sustains, so that it shows the latency of a server that keeps up.
const pacedRate = 200

func main() {
	bin := flag.String("bin", "", "directory with the binaries baseline, echoserver and echochild")
	rounds := flag.Int("rounds", 5, "rounds; a figure is the median of its rounds")
	duration := flag.Duration("duration", 600*time.Millisecond, "measured time of each figure")
	warmup := flag.Duration("warmup", 200*time.Millisecond, "load before each figure, not measured")
	streamBytes := flag.Int64("stream-bytes", 0, "bytes each stream connection sends (0: it streams for the warm-up and -duration)")
	msg := flag.Int64("bytes", 64, "size of an exchange's message")
	root := flag.String("root", ".", "the module's root (for testdata/servers)")
	flag.Parse()
	if *bin == "" || *rounds < 1 {
		fmt.Fprintln(os.Stderr, "table: -bin DIR is required, and -rounds must be at least 1")
		os.Exit(2)
	}
	cookbook := filepath.Join(*root, "testdata/servers/cookbook.py")
	b := func(name string) string { return filepath.Join(*bin, name) }
	servers := []server{
		{key: "baseline", name: "baseline: Go io.Copy echo", argv: []string{b("baseline"), "-addr", "{addr}"}},
		{key: "thread", name: "threading reference", argv: []string{b("echoserver"), "-model", "thread", "-addr", "{addr}"}},
		{key: "thread-prefix", name: "threading reference, prefix '{pid}: '", argv: []string{b("echoserver"), "-model", "thread", "-prefix", "{pid}: ", "-addr", "{addr}"}, prefix: "{pid}: "},
		{key: "event", name: "eventloop reference", argv: []string{b("echoserver"), "-model", "event", "-addr", "{addr}"}},
		{key: "event-prefix", name: "eventloop reference, prefix '{pid}: '", argv: []string{b("echoserver"), "-model", "event", "-prefix", "{pid}: ", "-addr", "{addr}"}, prefix: "{pid}: "},
		{key: "fork", name: "forking reference", argv: []string{b("echoserver"), "-model", "fork", "-addr", "{addr}"}},
		{key: "fork-oneshot", name: "forking reference, oneshot '{pid}: ' (children: echochild)", argv: []string{b("echoserver"), "-model", "fork", "-protocol", "oneshot", "-prefix", "{pid}: ", "-addr", "{addr}"}, protocol: echo.Oneshot, prefix: "{pid}: "},
		{key: "fork-oneshot-self", name: "forking reference, oneshot, children re-executing echoserver", argv: []string{b("echoserver"), "-model", "fork", "-child", "", "-protocol", "oneshot", "-prefix", "{pid}: ", "-addr", "{addr}"}, protocol: echo.Oneshot, prefix: "{pid}: "},
		{key: "py-fork", name: "Python ForkingMixIn (Cookbook), oneshot", argv: []string{"python3", cookbook, "fork", "{port}"}, protocol: echo.Oneshot, prefix: "{pid}: ", needs: "python3"},
		{key: "py-thread", name: "Python ThreadingMixIn (Cookbook), oneshot", argv: []string{"python3", cookbook, "thread", "{port}"}, protocol: echo.Oneshot, prefix: "{pid}: ", needs: "python3"},
		{key: "socat", name: "socat fork EXEC:cat", argv: []string{"socat", "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", "EXEC:cat"}, needs: "socat"},
	}
	var skipped []string
	servers = slices.DeleteFunc(servers, func(s server) bool {
		if s.needs == "" {
			return false
		}
		if _, err := exec.LookPath(s.needs); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %s is not installed", s.name, s.needs))
			return true
		}
		return false
	})

	printMachine(os.Stdout)
	fmt.Printf("load: internal/load, every byte verified; an exchange connects, sends %d bytes, half-closes and reads the reply to EOF;\n", *msg)
	fmt.Printf("a stream writes 256 KiB at a time while it reads the echo back; p50 at %d/s paces the client below every server's capacity;\n", pacedRate)
	fmt.Printf("server CPU per exchange counts the server process and the children it reaped (/proc/PID/stat)\n")
	fmt.Printf("each figure: %v warm-up, %v measured, median of %d rounds; (ratio) is to the baseline's median of the same run\n\n", *warmup, *duration, *rounds)

	// results[server][metric] holds one value per round.
	results := map[string]map[string][]float64{}
	ctx := context.Background()
	start := time.Now()
	for round := 1; round <= *rounds; round++ {
		for _, s := range servers {
			fmt.Fprintf(os.Stderr, "round %d/%d: %s\n", round, *rounds, s.name)
			if err := measure(ctx, s, results, *duration, *warmup, *streamBytes, *msg); err != nil {
				fmt.Fprintf(os.Stderr, "table: %s: %v\n", s.name, err)
				os.Exit(1)
			}
		}
	}
	printTable(os.Stdout, servers, results)
	for _, s := range skipped {
		fmt.Printf("skipped: %s\n", s)
	}
	fmt.Println()
	printGoals(os.Stdout, results)
	fmt.Printf("\nload average after: %s; the table took %v\n", loadavg(), time.Since(start).Round(time.Second))
}

// measure starts s and measures every metric that applies to it once.
func measure(ctx context.Context, s server, results map[string]map[string][]float64, duration, warmup time.Duration, streamBytes, msg int64) error {
	p, err := load.Launch(ctx, s.argv, io.Discard, 10*time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = p.Stop(3 * time.Second) }()
	if results[s.key] == nil {
		results[s.key] = map[string][]float64{}
	}
	prefix := echo.MustParseTemplate(s.prefix)
	type run struct {
		res    load.Result
		cpuPer float64 // CPU of the server and its reaped children per exchange, µs
	}
	done := map[string]run{} // one run serves several metrics
	for _, m := range metrics {
		if m.mode == load.Stream && s.protocol != echo.Stream {
			continue
		}
		rate := 0.0
		if m.key == "p50paced" {
			rate = pacedRate
		}
		key := fmt.Sprintf("%v/%d/%v", m.mode, m.clients, rate)
		r, ok := done[key]
		if !ok {
			cfg := load.Config{Addr: p.Addr, Clients: m.clients, Mode: m.mode, Protocol: s.protocol, Prefix: prefix,
				Duration: duration, Warmup: warmup, Bytes: msg, Chunk: 256 << 10, Rate: rate,
				// A listen backlog of 5 (Python, socat) makes a burst of
				// clients wait for SYN retransmits: 1 s, then 3 s.
				Timeout: 10 * time.Second}
			if m.mode == load.Stream {
				cfg.Bytes = streamBytes
			}
			cpu0, t0 := treeCPU(p.PID), time.Now()
			if r.res, err = load.Run(ctx, cfg); err != nil {
				return fmt.Errorf("%s: %w", m.title, err)
			}
			// CPU per second over the whole run (warm-up included: the
			// load is the same), divided by the measured exchanges/s.
			if perSec := r.res.PerSec(); perSec > 0 {
				r.cpuPer = (treeCPU(p.PID) - cpu0).Seconds() / time.Since(t0).Seconds() / perSec * 1e6
			}
			done[key] = r
		}
		v := r.cpuPer
		if m.value != nil {
			v = m.value(r.res)
		}
		results[s.key][m.key] = append(results[s.key][m.key], v)
	}
	return nil
}

// treeCPU is the CPU time of process pid and of the children it reaped
// (utime, stime, cutime, cstime of /proc/PID/stat).
func treeCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // fields 14-17, counted from the state (field 3)
		var v int64
		fmt.Sscan(f[i], &v)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printTable(w io.Writer, servers []server, results map[string]map[string][]float64) {
	fmt.Fprint(w, "| server |")
	for _, m := range metrics {
		fmt.Fprintf(w, " %s |", m.title)
	}
	fmt.Fprint(w, "\n|---|")
	for range metrics {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	base := results["baseline"]
	for _, s := range servers {
		fmt.Fprintf(w, "| %s |", s.name)
		for _, m := range metrics {
			v, ok := results[s.key][m.key]
			if !ok {
				fmt.Fprint(w, " – |")
				continue
			}
			med := median(v)
			fmt.Fprintf(w, " %s%s (%.2f) |", format(med), m.unit, med/median(base[m.key]))
		}
		fmt.Fprintln(w)
	}
}

func format(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// printGoals prints the goals of issues 7 and 12 as ratios of medians of
// this run.
func printGoals(w io.Writer, results map[string]map[string][]float64) {
	ratio := func(a, b, m string) (float64, bool) {
		x, ok1 := results[a][m]
		y, ok2 := results[b][m]
		if !ok1 || !ok2 {
			return 0, false
		}
		return median(x) / median(y), true
	}
	type goal struct {
		what, a, b, m string
		want          float64
		atMost        bool
	}
	goals := []goal{
		{"threading stream MB/s, 1 conn, / baseline", "thread", "baseline", "mbs1", 0.95, false},
		{"threading stream MB/s, 8 conns, / baseline", "thread", "baseline", "mbs8", 0.95, false},
		{"threading+prefix stream MB/s, 1 conn, / baseline", "thread-prefix", "baseline", "mbs1", 0.95, false},
		{"threading+prefix stream MB/s, 8 conns, / baseline", "thread-prefix", "baseline", "mbs8", 0.95, false},
		{"threading exchanges/s, 1 client, / baseline", "thread", "baseline", "ex1", 0.9, false},
		{"threading exchanges/s, 8 clients, / baseline", "thread", "baseline", "ex8", 0.9, false},
		{"forking oneshot exchanges/s, 1 client, / Python ForkingMixIn", "fork-oneshot", "py-fork", "ex1", 1, false},
		{"forking oneshot exchanges/s, 8 clients, / Python ForkingMixIn", "fork-oneshot", "py-fork", "ex8", 1, false},
		{"forking oneshot p50, 1 client at 200/s, / Python ForkingMixIn", "fork-oneshot", "py-fork", "p50paced", 0.5, true},
		{"forking oneshot p50, 1 client back to back, / Python ForkingMixIn", "fork-oneshot", "py-fork", "p50", 0.5, true},
		{"forking (re-executing echoserver) oneshot exchanges/s, 1 client, / Python ForkingMixIn", "fork-oneshot-self", "py-fork", "ex1", 1, false},
		{"forking (re-executing echoserver) oneshot exchanges/s, 8 clients, / Python ForkingMixIn", "fork-oneshot-self", "py-fork", "ex8", 1, false},
		{"(issue 12) eventloop stream MB/s, 8 conns, / threading", "event", "thread", "mbs8", 0.8, false},
		{"(issue 12) eventloop exchanges/s, 8 clients, / threading", "event", "thread", "ex8", 0.8, false},
	}
	fmt.Fprintln(w, "| goal (issue 7 unless marked) | ratio | target | |")
	fmt.Fprintln(w, "|---|---:|---|---|")
	for _, g := range goals {
		r, ok := ratio(g.a, g.b, g.m)
		if !ok {
			fmt.Fprintf(w, "| %s | – | | not measured |\n", g.what)
			continue
		}
		verdict, cmp := "met", "≥"
		if g.atMost {
			cmp = "≤"
		}
		if (g.atMost && r > g.want) || (!g.atMost && r < g.want) {
			verdict = "**missed**"
		}
		extra := ""
		if strings.Contains(g.what, "exchanges/s") && strings.Contains(g.what, "Python") && r >= 1.5 {
			extra = " (stretch 1.5× too)"
		}
		fmt.Fprintf(w, "| %s | %.2f | %s %.2f | %s%s |\n", g.what, r, cmp, g.want, verdict, extra)
	}
	// The event loop's CPU: one thread serves, so it should use one core's
	// worth at most (issue 12). Cores = CPU per exchange × exchanges/s.
	if cpu, ok := results["event"]["cpu8"]; ok {
		cores := median(cpu) * median(results["event"]["ex8"]) / 1e6
		verdict := "met"
		if cores > 1 {
			verdict = "**missed**"
		}
		fmt.Fprintf(w, "| (issue 12) eventloop server CPU, 8 clients, in cores | %.2f | ≤ 1.00 | %s |\n", cores, verdict)
	}
}

func printMachine(w io.Writer) {
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	fmt.Fprintf(w, "machine: %s, %d CPUs, Linux %s, %s; load average before: %s\n", cpu, runtime.NumCPU(), kernel, runtime.Version(), loadavg())
	for _, v := range [][]string{{"python3", "--version"}, {"socat", "-V"}} {
		out, err := exec.Command(v[0], v[1:]...).CombinedOutput()
		if err != nil {
			continue
		}
		line := strings.TrimSpace(string(out))
		for _, l := range strings.Split(line, "\n") {
			if strings.Contains(l, "version") || strings.HasPrefix(l, "Python") {
				line = strings.TrimSpace(l)
				break
			}
		}
		fmt.Fprintf(w, "  %s\n", line)
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
