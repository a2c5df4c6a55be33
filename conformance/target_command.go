package conformance

import (
	"context"
	"errors"
	"strings"
	"sync"
)

// Command returns a target that runs argv for every check that needs a
// fresh server. In each argument "{port}" becomes a free port on 127.0.0.1
// and "{addr}" becomes 127.0.0.1:PORT; the environment carries PORT too.
// A command that names "{sock}" instead (or $SOCK, set in its environment)
// is a Unix-domain server: it becomes a fresh path in a private temporary
// directory, removed once the server is gone. The server is ready when
// that address listens (a command that daemonizes is followed to the
// descendant that does); it is stopped with SIGTERM, and its whole process
// tree is killed and reaped afterwards.
func Command(argv ...string) Target { return Target{commandKind{argv}} }

type commandKind struct{ argv []string }

func (k commandKind) String() string { return "command " + strings.Join(k.argv, " ") }

func (commandKind) caps() capabilities {
	return capabilities{restart: true, exitStatus: true, process: func() string { return "" }}
}

func (k commandKind) transport(o *options) (transport, error) {
	tr, err := commandTransport(k.argv)
	if err != nil {
		return nil, err
	}
	return tr, o.agree(tr)
}

var subreaper sync.Once

// portTries bounds the starts of one fresh server whose port another
// process took between the harness choosing it and the server binding it.
const portTries = 3

func (k commandKind) start(ctx context.Context, o *options) (*instance, error) {
	tr, err := k.transport(o)
	if err != nil {
		return nil, err
	}
	for try := 1; ; try++ {
		in := &instance{o: o}
		err := in.startCommand(ctx, tr, k.argv)
		if !errors.Is(err, errPortTaken) || try == portTries {
			return in, err
		}
	}
}
