package echo

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTemplateErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"{name}: ", "unknown placeholder {name}"},
		{"{PID}: ", "unknown placeholder {PID}"},
		{"{}: ", "unknown placeholder {}"},
		{"{pid : ", "unclosed {"},
		{"a}b", "unmatched }"},
		{"{{}", "unmatched }"},
		{"{pid}", "must be followed by text"},
		{"{pid}1", "must be followed by text that does not start with a digit"},
		{"x{ppid}0 ", "{ppid} must be followed by text that does not start with a digit"},
		{"{pid}{ppid}: ", "{pid} must be followed by text"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			_, err := ParseTemplate(tc.src)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.Panics(t, func() { MustParseTemplate(tc.src) })
		})
	}
}

func TestTemplateRender(t *testing.T) {
	for _, tc := range []struct {
		src       string
		pid, ppid int
		want      string
		uses      []string
	}{
		{"", 1, 2, "", nil},
		{"plain text", 1, 2, "plain text", nil},
		{"{pid}: ", 123, 1, "123: ", []string{"pid"}},
		{"{ppid} :", 123, 1, "1 :", []string{"ppid"}},
		{"{pid}/{ppid}: ", 4194304, 0, "4194304/0: ", []string{"pid", "ppid"}},
		{"{pid}-{pid}: ", 5, 6, "5-5: ", []string{"pid"}},
		{"{{pid}} {pid}}}: ", 42, 1, "{pid} 42}: ", []string{"pid"}},
		{"{{{pid}: ", 9, 1, "{9: ", []string{"pid"}},
		{"{pid}{{", 9, 1, "9{", []string{"pid"}},
		{"{{}}", 9, 1, "{}", nil},
		{"{pid}\n", 0, 1, "0\n", []string{"pid"}},
	} {
		t.Run(tc.src, func(t *testing.T) {
			tmpl, err := ParseTemplate(tc.src)
			require.NoError(t, err)
			require.Equal(t, tc.src, tmpl.String())
			require.Equal(t, tc.want, string(tmpl.Render(tc.pid, tc.ppid)))
			require.Equal(t, tc.want == "", tmpl.IsZero())
			for _, name := range []string{"pid", "ppid"} {
				require.Equal(t, contains(tc.uses, name), tmpl.Uses(name), "Uses(%q)", name)
			}
		})
	}
	var zero Template
	require.True(t, zero.IsZero())
	require.Empty(t, zero.Render(1, 2))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// errOther stands for any error but ErrShort in the Match table.
var errOther = errors.New("any error but ErrShort")

func TestTemplateMatch(t *testing.T) {
	for _, tc := range []struct {
		src, in   string
		pid, ppid int
		n         int
		err       error
	}{
		{"{pid}: ", "123: hello", 123, -1, 5, nil},
		{"{pid}: ", "0: ", 0, -1, 3, nil},
		{"{pid}: ", "4194304: 0", 4194304, -1, 9, nil},
		{"{pid}: ", "", -1, -1, 0, ErrShort},
		{"{pid}: ", "1", -1, -1, 0, ErrShort},
		{"{pid}: ", "0", -1, -1, 0, ErrShort},
		{"{pid}: ", "123", -1, -1, 0, ErrShort},
		{"{pid}: ", "123:", -1, -1, 0, ErrShort},
		{"{pid}: ", "abc", -1, -1, 0, errOther},
		{"{pid}: ", ": ", -1, -1, 0, errOther},
		{"{pid}: ", "12x", -1, -1, 0, errOther},
		{"{pid}: ", "12:x", -1, -1, 0, errOther},
		{"{pid}: ", "0123: ", -1, -1, 0, errOther},
		{"{pid}: ", "01", -1, -1, 0, errOther}, // no rendering starts with a leading zero
		{"{pid}: ", "12345678901: ", -1, -1, 0, errOther},
		{"{pid}: ", "12345678901", -1, -1, 0, errOther}, // nor with 11 digits
		{"{ppid} :", "77 :x", -1, 77, 4, nil},
		{"{pid}/{ppid}: ", "12/1: data", 12, 1, 6, nil},
		{"{pid}/{ppid}: ", "12/", -1, -1, 0, ErrShort},
		{"{pid}/{pid}: ", "3/3: ", 3, -1, 5, nil},
		{"{pid}/{pid}: ", "1/2: ", -1, -1, 0, errOther},
		{"hello ", "hel", -1, -1, 0, ErrShort},
		{"hello ", "help", -1, -1, 0, errOther},
		{"[{pid}] ", "[12] ", 12, -1, 5, nil},
		{"", "anything", -1, -1, 0, nil},
		{"", "", -1, -1, 0, nil},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.src, tc.in), func(t *testing.T) {
			v, n, err := MustParseTemplate(tc.src).Match([]byte(tc.in))
			switch tc.err {
			case nil:
				require.NoError(t, err)
				require.Equal(t, Values{PID: tc.pid, PPID: tc.ppid}, v)
				require.Equal(t, tc.n, n)
			case ErrShort:
				require.ErrorIs(t, err, ErrShort)
			default:
				require.Error(t, err)
				require.NotErrorIs(t, err, ErrShort)
			}
		})
	}
}

// TestTemplateRoundTrip tests that Match reads back what Render wrote,
// whatever follows it, and that every proper prefix of a rendering is
// ErrShort.
func TestTemplateRoundTrip(t *testing.T) {
	for _, src := range []string{"{pid}: ", "{ppid} :", "{pid}/{ppid}: ", "<{{{pid}}}> ", "pid={pid}\tppid={ppid}\n", "static "} {
		tmpl := MustParseTemplate(src)
		for _, ids := range [][2]int{{0, 0}, {1, 9}, {10, 100}, {32767, 1}, {4194304, 2147483647}} {
			checkRoundTrip(t, tmpl, ids[0], ids[1], []byte("0123 data"))
		}
	}
}

func checkRoundTrip(t *testing.T, tmpl Template, pid, ppid int, tail []byte) {
	t.Helper()
	r := tmpl.Render(pid, ppid)
	want := Values{PID: -1, PPID: -1}
	if tmpl.Uses("pid") {
		want.PID = pid
	}
	if tmpl.Uses("ppid") {
		want.PPID = ppid
	}
	for _, in := range [][]byte{r, append(r[:len(r):len(r)], tail...)} {
		v, n, err := tmpl.Match(in)
		require.NoError(t, err, "%q matching %q", tmpl, in)
		require.Equal(t, want, v, "%q matching %q", tmpl, in)
		require.Equal(t, len(r), n, "%q matching %q", tmpl, in)
	}
	for i := range len(r) {
		_, _, err := tmpl.Match(r[:i])
		require.ErrorIs(t, err, ErrShort, "%q matching %q", tmpl, r[:i])
	}
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"", "{pid}: ", "{ppid} :", "{{pid}} {pid}}}: ", "{pid}1", "{x}", "}{", "{pid}/{ppid}: "} {
		f.Add(s, uint32(1234), uint32(1), []byte("5 tail"))
	}
	f.Fuzz(func(t *testing.T, src string, pid, ppid uint32, tail []byte) {
		tmpl, err := ParseTemplate(src)
		if err != nil {
			assert.Panics(t, func() { MustParseTemplate(src) })
			return
		}
		require.Equal(t, src, tmpl.String())
		checkRoundTrip(t, tmpl, int(pid>>1), int(ppid>>1), tail)
	})
}

func TestParseProtocol(t *testing.T) {
	for s, want := range map[string]Protocol{"stream": Stream, "oneshot": Oneshot, "line": Line} {
		p, err := ParseProtocol(s)
		require.NoError(t, err)
		require.Equal(t, want, p)
		require.Equal(t, s, p.String())
	}
	for _, s := range []string{"", "Stream", "ONESHOT", " stream", "udp", "echo", "line\n", "lines"} {
		_, err := ParseProtocol(s)
		require.Error(t, err, "%q", s)
		require.Contains(t, err.Error(), "stream, oneshot or line")
	}
	require.Equal(t, "Protocol(7)", Protocol(7).String())
}

func TestConfigWithDefaults(t *testing.T) {
	d := Config{}.WithDefaults()
	require.Equal(t, Config{MaxMsg: DefaultMaxMsg, Quiet: DefaultQuiet, MaxLine: DefaultMaxLine}, d)
	set := Config{Protocol: Line, MaxMsg: 7, Quiet: 3, MaxLine: 9}
	require.Equal(t, set, set.WithDefaults(), "limits that are set stay")
}
