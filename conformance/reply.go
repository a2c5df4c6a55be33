package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/echoconform/echoconform/echo"
)

// verifyReply checks that got is exactly the rendered prefix followed by
// want, and returns the values the prefix carried. Its errors say where the
// reply first differs, with the bytes shown readably.
func verifyReply(t echo.Template, got, want []byte) (echo.Values, error) {
	v, n, err := t.Match(got)
	if errors.Is(err, echo.ErrShort) {
		return v, fmt.Errorf("the reply ends inside the prefix %q: got %s", t, show(got))
	}
	if err != nil {
		return v, fmt.Errorf("the reply does not start with the prefix %q: %v", t, err)
	}
	return v, compareEcho(got[n:], want)
}

// verifyPartial checks that got, a reply still arriving, is a leading part
// of the prefix followed by want.
func verifyPartial(t echo.Template, got, want []byte) error {
	_, n, err := t.Match(got)
	if errors.Is(err, echo.ErrShort) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("the reply does not start with the prefix %q: %v", t, err)
	}
	data := got[n:]
	if len(data) > len(want) {
		return fmt.Errorf("%d extra bytes came back after the %d sent: %s", len(data)-len(want), len(want), show(data[len(want):]))
	}
	if i := firstDiff(data, want[:len(data)]); i >= 0 {
		return diffAt(i, data, want)
	}
	return nil
}

// compareEcho explains how the echoed data differs from what was sent.
func compareEcho(data, want []byte) error {
	if bytes.Equal(data, want) {
		return nil
	}
	i := firstDiff(data, want)
	if i < 0 {
		if len(data) < len(want) {
			return fmt.Errorf("only %d of the %d bytes sent came back; the first missing byte is at offset %d (%s), sent %s",
				len(data), len(want), len(data), show(want[len(data):min(len(data)+16, len(want))]), show(want))
		}
		return fmt.Errorf("%d extra bytes came back after the %d sent: %s", len(data)-len(want), len(want), show(data[len(want):]))
	}
	return diffAt(i, data, want)
}

func diffAt(i int, data, want []byte) error {
	lo := max(0, i-8)
	return fmt.Errorf("the echo differs at offset %d of %d bytes sent: want %s, got %s (context from offset %d: want %s, got %s; %d bytes came back in all)",
		i, len(want), show(want[i:i+1]), show(data[i:i+1]), lo, show(want[lo:min(i+8, len(want))]), show(data[lo:min(i+8, len(data))]), len(data))
}

// firstDiff returns the first offset where a and b differ within their
// common length, or -1.
func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// show quotes bytes readably; long data is summarised by its ends.
func show(b []byte) string {
	const edge = 24
	if len(b) <= 2*edge {
		return quote(b)
	}
	return fmt.Sprintf("%s…%s (%d bytes)", quote(b[:edge]), quote(b[len(b)-edge:]), len(b))
}

// quote writes bytes as a Go string literal with every byte that is not
// printable ASCII escaped as \xNN: server data is bytes, not UTF-8.
func quote(b []byte) string {
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
