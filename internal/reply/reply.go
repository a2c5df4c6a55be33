// Package reply checks what an echo server sent back against what was
// sent: a rendering of the prefix template followed by exactly the echo.
// Its errors say where a reply first differs, with the bytes shown
// readably (server data is bytes, not UTF-8, and may be megabytes). The
// conformance harness, the load generator and the reference servers' tests
// all check replies with it.
package reply

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/echoconform/echoconform/echo"
)

// Verify checks that got is exactly a rendering of t followed by want, and
// returns the values the prefix carried.
func Verify(t echo.Template, got, want []byte) (echo.Values, error) {
	v, n, err := t.Match(got)
	if errors.Is(err, echo.ErrShort) {
		return v, fmt.Errorf("the reply ends inside the prefix %q: got %s", t, Show(got))
	}
	if err != nil {
		return v, fmt.Errorf("the reply does not start with the prefix %q: %v", t, err)
	}
	return v, Compare(got[n:], want)
}

// VerifyPartial checks that got, a reply still arriving, is a leading part
// of a rendering of t followed by want.
func VerifyPartial(t echo.Template, got, want []byte) error {
	_, n, err := t.Match(got)
	if errors.Is(err, echo.ErrShort) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("the reply does not start with the prefix %q: %v", t, err)
	}
	return ComparePart(0, got[n:], want)
}

// Compare explains how data, the whole echo, differs from want, what was
// sent; nil when they are equal.
func Compare(data, want []byte) error {
	if bytes.Equal(data, want) {
		return nil
	}
	i := FirstDiff(data, want)
	if i < 0 {
		if len(data) < len(want) {
			return fmt.Errorf("only %d of the %d bytes sent came back; the first missing byte is at offset %d (%s), sent %s",
				len(data), len(want), len(data), Show(want[len(data):min(len(data)+16, len(want))]), Show(want))
		}
		return extra(0, data, want)
	}
	return DiffAt(i, data, want)
}

// ComparePart checks data, the part of an echo still arriving that starts
// at offset off of the stream, against want, what was sent from offset
// off: data may end early, but every byte of it must match, and it must
// not run past want.
func ComparePart(off int64, data, want []byte) error {
	if len(data) > len(want) {
		return extra(off, data, want)
	}
	if i := FirstDiff(data, want[:len(data)]); i >= 0 {
		return diffAt(off, i, data, want)
	}
	return nil
}

func extra(off int64, data, want []byte) error {
	return fmt.Errorf("%d extra bytes came back after the %d sent: %s", len(data)-len(want), off+int64(len(want)), Show(data[len(want):]))
}

// DiffAt describes the difference of data from want at offset i, where
// they first differ, with some context.
func DiffAt(i int, data, want []byte) error { return diffAt(0, i, data, want) }

// diffAt is DiffAt for data and want that start at offset off of a stream.
func diffAt(off int64, i int, data, want []byte) error {
	lo := max(0, i-8)
	return fmt.Errorf("the echo differs at offset %d of %d bytes sent: want %s, got %s (context from offset %d: want %s, got %s; %d bytes came back in all)",
		off+int64(i), off+int64(len(want)), Show(want[i:i+1]), Show(data[i:i+1]), off+int64(lo),
		Show(want[lo:min(i+8, len(want))]), Show(data[lo:min(i+8, len(data))]), off+int64(len(data)))
}

// FirstDiff returns the first offset where a and b differ within their
// common length, or -1.
func FirstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; {
		// Skip equal blocks with memcmp: the load generator checks
		// gigabytes.
		j := min(i+4096, n)
		if bytes.Equal(a[i:j], b[i:j]) {
			i = j
			continue
		}
		for ; a[i] == b[i]; i++ {
		}
		return i
	}
	return -1
}

// Show quotes bytes readably; long data is summarised by its ends.
func Show(b []byte) string {
	const edge = 24
	if len(b) <= 2*edge {
		return Quote(b)
	}
	return fmt.Sprintf("%s…%s (%d bytes)", Quote(b[:edge]), Quote(b[len(b)-edge:]), len(b))
}

// Quote writes bytes as a Go string literal with every byte that is not
// printable ASCII escaped as \xNN: server data is bytes, not UTF-8.
func Quote(b []byte) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\r':
			sb.WriteString(`\r`)
		case c == '\t':
			sb.WriteString(`\t`)
		case c >= 0x20 && c < 0x7f:
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, `\x%02x`, c)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}
