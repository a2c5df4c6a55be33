package cli

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// FuzzParseArgs: any command line is either accepted as a valid
// configuration or rejected with a one-line usage error; it never panics.
func FuzzParseArgs(f *testing.F) {
	f.Add("-protocol", "oneshot", "-prefix", "{pid}: ")
	f.Add("-run", "STREAM-1", "--", "python3")
	f.Add("-prefix", "{nope}", "-model", "fork")
	f.Add("-time-scale", "-1", "-checks", "0")
	f.Add("-addr", "127.0.0.1:1", "--", "x")
	f.Fuzz(func(t *testing.T, a, b, c, d string) {
		cfg, err := parse([]string{a, b, c, d}, io.Discard)
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		if err != nil {
			var ue usageError
			if !errors.As(err, &ue) {
				t.Fatalf("%q: not a usage error: %T %v", []string{a, b, c, d}, err, err)
			}
			if strings.ContainsAny(ue.Error(), "\n\r") {
				t.Fatalf("usage error is not one line: %q", ue.Error())
			}
			return
		}
		if cfg.maxMsg <= 0 || cfg.checks <= 0 || cfg.timeout <= 0 || cfg.timeScale <= 0 || cfg.concurrency < 4 {
			t.Fatalf("%q accepted with out-of-range values: %+v", []string{a, b, c, d}, cfg)
		}
		if cfg.addr != "" && len(cfg.argv) > 0 {
			t.Fatalf("%q accepted both -addr and a command", []string{a, b, c, d})
		}
	})
}
