package forking

import (
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/impl/internal/impltest"
)

// BenchmarkSpawn measures the fixed cost of a child, the floor under every
// connection of the fork model: an operation starts a process, lets it
// exit, and reaps it. child-cpu-us is the CPU time the child used (user
// and system), which bounds how many children two cores can make.
//
//   - what=true: fork+exec+exit+wait of /bin/true (dynamically linked C).
//   - what=child: a forking child of this binary that finds its control
//     socket closed once it is up: exec, runtime and package start-up, exit.
//   - what=child-allprocs: the same without the GOMAXPROCS=1 the server
//     gives its children.
//   - what=echochild: the same with cmd/echochild, a static binary, as
//     the child program (Server.Child).
func BenchmarkSpawn(b *testing.B) {
	env := New(echo.Config{}).env
	b.Run("what=true", func(b *testing.B) {
		measureChildren(b, func() error { return exec.Command("/bin/true").Run() })
	})
	echochild := impltest.BuildEchochild(b)
	for _, v := range []struct {
		name, path string
		env        []string
	}{
		{"child", "", env},
		{"child-allprocs", "", slices.DeleteFunc(slices.Clone(env), func(s string) bool { return s == "GOMAXPROCS=1" })},
		{"echochild", echochild, env},
	} {
		b.Run("what="+v.name, func(b *testing.B) {
			measureChildren(b, func() error {
				cmd, ctrl, err := startChild(v.path, v.env)
				if err != nil {
					return err
				}
				_ = unix.Close(ctrl) // the child reads EOF and exits
				return cmd.Wait()
			})
		})
	}
}

// measureChildren runs op b.N times and reports the CPU time its children
// used per operation.
func measureChildren(b *testing.B, op func() error) {
	before := childCPU()
	b.ResetTimer()
	for range b.N {
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((childCPU()-before).Microseconds())/float64(b.N), "child-cpu-us")
}

// childCPU is the CPU time of every reaped child of this process.
func childCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
