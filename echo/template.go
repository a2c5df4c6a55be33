package echo

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A Template is the prefix a server writes once per connection, with the
// placeholders {pid} and {ppid} (SPEC.md PREFIX-1). "{{" and "}}" stand for
// literal braces. The zero Template is the empty prefix.
type Template struct {
	src   string
	parts []part
}

type part struct {
	lit   string // literal text, when field == 0
	field field
}

type field int

const (
	literal field = iota
	pidField
	ppidField
)

var fieldNames = map[string]field{"pid": pidField, "ppid": ppidField}

// ErrShort reports that a reply is too short to hold the whole prefix yet.
var ErrShort = errors.New("echo: reply shorter than the prefix")

// ParseTemplate parses a prefix template. A placeholder must be followed by
// literal text that does not start with a digit, so that a reply can be read
// back unambiguously (SPEC.md PREFIX-1).
func ParseTemplate(s string) (Template, error) {
	t := Template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '{' && i+1 < len(s) && s[i+1] == '{', c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte(c)
			i++
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return Template{}, fmt.Errorf("prefix template %q: unclosed { at offset %d", s, i)
			}
			name := s[i+1 : i+end]
			f, ok := fieldNames[name]
			if !ok {
				return Template{}, fmt.Errorf("prefix template %q: unknown placeholder {%s} (known: {pid}, {ppid}; write {{ for a literal brace)", s, name)
			}
			flush()
			t.parts = append(t.parts, part{field: f})
			i += end
		case c == '}':
			return Template{}, fmt.Errorf("prefix template %q: unmatched } at offset %d (write }} for a literal brace)", s, i)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	for i, p := range t.parts {
		if p.field == literal {
			continue
		}
		if i+1 == len(t.parts) || t.parts[i+1].field != literal || isDigit(t.parts[i+1].lit[0]) {
			return Template{}, fmt.Errorf("prefix template %q: placeholder {%s} must be followed by text that does not start with a digit", s, p.field)
		}
	}
	return t, nil
}

// MustParseTemplate is ParseTemplate for constants; it panics on error.
func MustParseTemplate(s string) Template {
	t, err := ParseTemplate(s)
	if err != nil {
		panic(err)
	}
	return t
}

func (f field) String() string {
	for name, g := range fieldNames {
		if g == f {
			return name
		}
	}
	return "literal"
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// String returns the template's source text.
func (t Template) String() string { return t.src }

// IsZero reports whether the template writes nothing.
func (t Template) IsZero() bool { return len(t.parts) == 0 }

// Uses reports whether the template contains the placeholder {name}.
func (t Template) Uses(name string) bool {
	for _, p := range t.parts {
		if p.field != literal && p.field.String() == name {
			return true
		}
	}
	return false
}

// Render returns the prefix for a connection handled by process pid whose
// parent is ppid.
func (t Template) Render(pid, ppid int) []byte {
	var b []byte
	for _, p := range t.parts {
		switch p.field {
		case literal:
			b = append(b, p.lit...)
		case pidField:
			b = strconv.AppendInt(b, int64(pid), 10)
		case ppidField:
			b = strconv.AppendInt(b, int64(ppid), 10)
		}
	}
	return b
}

// Values are the numbers a reply's prefix carried. A field is -1 when the
// template has no such placeholder.
type Values struct{ PID, PPID int }

// Match reads the prefix at the start of b. It returns the values found and
// the length of the prefix. It returns ErrShort when b is a proper prefix of
// some rendering of t, and another error when b cannot start with t.
func (t Template) Match(b []byte) (Values, int, error) {
	v := Values{PID: -1, PPID: -1}
	n := 0
	for _, p := range t.parts {
		rest := b[n:]
		if p.field == literal {
			k := min(len(rest), len(p.lit))
			if !bytes.Equal(rest[:k], []byte(p.lit[:k])) {
				return v, 0, fmt.Errorf("prefix mismatch at offset %d: want %q, got %q", n, p.lit, clip(rest, len(p.lit)))
			}
			if k < len(p.lit) {
				return v, 0, ErrShort
			}
			n += k
			continue
		}
		d := 0
		for d < len(rest) && isDigit(rest[d]) {
			d++
		}
		// A number that is already too long or has a leading zero can never
		// become a rendering, however many digits follow: not ErrShort.
		if d > 10 || (d > 1 && rest[0] == '0') || (d == 0 && len(rest) > 0) {
			return v, 0, fmt.Errorf("prefix mismatch at offset %d: want a decimal {%s}, got %q", n, p.field, clip(rest, 12))
		}
		if d == len(rest) {
			return v, 0, ErrShort
		}
		x, _ := strconv.Atoi(string(rest[:d]))
		if p.field == pidField {
			if v.PID >= 0 && v.PID != x {
				return v, 0, fmt.Errorf("prefix has two different {pid} values %d and %d", v.PID, x)
			}
			v.PID = x
		} else {
			if v.PPID >= 0 && v.PPID != x {
				return v, 0, fmt.Errorf("prefix has two different {ppid} values %d and %d", v.PPID, x)
			}
			v.PPID = x
		}
		n += d
	}
	return v, n, nil
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
