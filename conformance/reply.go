package conformance

import (
	"github.com/echoconform/echoconform/echo"
	"github.com/echoconform/echoconform/internal/reply"
)

// The reply checks live in internal/reply, which the load generator and
// the reference servers' tests share; these are the names the checks of
// this package call them by.

// verifyReply checks that got is exactly the rendered prefix followed by
// want, and returns the values the prefix carried (reply.Verify).
func verifyReply(t echo.Template, got, want []byte) (echo.Values, error) {
	return reply.Verify(t, got, want)
}

// verifyPartial checks that got, a reply still arriving, is a leading part
// of the prefix followed by want (reply.VerifyPartial).
func verifyPartial(t echo.Template, got, want []byte) error { return reply.VerifyPartial(t, got, want) }

// diffAt describes the difference at offset i (reply.DiffAt).
func diffAt(i int, data, want []byte) error { return reply.DiffAt(i, data, want) }

// firstDiff returns the first offset where a and b differ within their
// common length, or -1 (reply.FirstDiff).
func firstDiff(a, b []byte) int { return reply.FirstDiff(a, b) }

// show quotes bytes readably; long data is summarised by its ends
// (reply.Show).
func show(b []byte) string { return reply.Show(b) }
