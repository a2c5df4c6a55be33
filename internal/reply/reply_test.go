package reply

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/echo"
)

func TestVerify(t *testing.T) {
	tmpl := echo.MustParseTemplate("{pid}: ")
	v, err := Verify(tmpl, []byte("42: hello"), []byte("hello"))
	require.NoError(t, err)
	require.Equal(t, 42, v.PID)

	long := bytes.Repeat([]byte("x"), 4097)
	for _, tc := range []struct{ got, want, err string }{
		{"42", "hello", `the reply ends inside the prefix "{pid}: ": got "42"`},
		{"42:Hello", "hello", `the reply does not start with the prefix "{pid}: ": `},
		{"42: hellx", "hello", `the echo differs at offset 4 of 5 bytes sent: want "o", got "x" (context from offset 0: want "hello", got "hellx"; 5 bytes came back in all)`},
		{"42: hello!", "hello", `1 extra bytes came back after the 5 sent: "!"`},
		{"42: hel", "hello", `only 3 of the 5 bytes sent came back; the first missing byte is at offset 3 ("lo"), sent "hello"`},
		{"42: " + string(long[:4096]), string(long), "only 4096 of the 4097 bytes sent came back"},
	} {
		_, err := Verify(tmpl, []byte(tc.got), []byte(tc.want))
		require.ErrorContains(t, err, tc.err, "reply %q", tc.got)
	}
}

func TestVerifyPartial(t *testing.T) {
	tmpl := echo.MustParseTemplate("{pid}: ")
	require.NoError(t, VerifyPartial(tmpl, []byte("4"), []byte("hello")))
	require.NoError(t, VerifyPartial(tmpl, []byte("42: he"), []byte("hello")))
	require.ErrorContains(t, VerifyPartial(tmpl, []byte("42: hx"), []byte("hello")), "differs at offset 1 of 5 bytes sent")
	require.ErrorContains(t, VerifyPartial(tmpl, []byte("42: hello!!"), []byte("hello")), "2 extra bytes came back after the 5 sent")
	require.ErrorContains(t, VerifyPartial(tmpl, []byte("x"), []byte("hello")), "does not start with the prefix")
}

func TestComparePart(t *testing.T) {
	require.NoError(t, ComparePart(1000, []byte("abc"), []byte("abcd")))
	require.EqualError(t, ComparePart(1000, []byte("abx"), []byte("abc")),
		`the echo differs at offset 1002 of 1003 bytes sent: want "c", got "x" (context from offset 1000: want "abc", got "abx"; 1003 bytes came back in all)`)
	require.EqualError(t, ComparePart(1000, []byte("abcd"), []byte("abc")), `1 extra bytes came back after the 1003 sent: "d"`)
}

func TestFirstDiff(t *testing.T) {
	a := bytes.Repeat([]byte{7}, 10000)
	require.Equal(t, -1, FirstDiff(a, a))
	require.Equal(t, -1, FirstDiff(a, a[:5]))
	for _, i := range []int{0, 1, 4095, 4096, 4097, 9999} {
		b := bytes.Clone(a)
		b[i] = 8
		require.Equal(t, i, FirstDiff(a, b))
		require.Equal(t, i, FirstDiff(b, a))
	}
}

func TestShow(t *testing.T) {
	require.Equal(t, `"a\x00\xc9\xb1\n\"\\\t\r"`, Show([]byte("a\x00\xc9\xb1\n\"\\\t\r")))
	long := []byte(strings.Repeat("y", 100))
	require.Equal(t, Quote(long[:24])+"…"+Quote(long[76:])+" (100 bytes)", Show(long))
}
