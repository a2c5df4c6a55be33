package conformance

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/echo"
)

// TestEveryRequirementHasOneCheck keeps SPEC.md and the checks in step.
func TestEveryRequirementHasOneCheck(t *testing.T) {
	require.NotEmpty(t, requirements)
	ids := map[string]bool{}
	for _, r := range requirements {
		ids[r.ID] = true
		require.Contains(t, checks, r.ID, "SPEC.md requirement %s has no check", r.ID)
		require.NotEmpty(t, r.Title, r.ID)
		require.NotEmpty(t, r.Text, r.ID)
	}
	for id := range checks {
		require.True(t, ids[id], "check %s has no requirement in SPEC.md", id)
	}
}

func TestParseSpecRejectsDuplicates(t *testing.T) {
	_, err := parseSpec("| A-1 | MUST | t | x |\n| A-1 | SHOULD | t | y |\n")
	require.ErrorContains(t, err, "A-1 appears twice")
}

func TestVerifyReply(t *testing.T) {
	tmpl := echo.MustParseTemplate("{pid}: ")
	v, err := verifyReply(tmpl, []byte("42: hello"), []byte("hello"))
	require.NoError(t, err)
	require.Equal(t, 42, v.PID)

	for _, tc := range []struct{ got, want, errText string }{
		{"42: helo", "hello", "differs at offset 3"},
		{"42: hel", "hello", "only 3 of the 5 bytes"},
		{"42: hello!!", "hello", "2 extra bytes"},
		{"42 hello", "hello", "does not start with the prefix"},
		{"42", "hello", "ends inside the prefix"},
	} {
		_, err := verifyReply(tmpl, []byte(tc.got), []byte(tc.want))
		require.ErrorContains(t, err, tc.errText, "reply %q", tc.got)
	}
	require.NoError(t, verifyPartial(tmpl, []byte("4"), []byte("hello")))
	require.NoError(t, verifyPartial(tmpl, []byte("42: he"), []byte("hello")))
	require.ErrorContains(t, verifyPartial(tmpl, []byte("42: hx"), []byte("hello")), "offset 1")
}

func TestShow(t *testing.T) {
	require.Equal(t, `"a\x00\xc9\xb1\n"`, show([]byte("a\x00\xc9\xb1\n")))
	long := make([]byte, 100)
	require.Contains(t, show(long), "(100 bytes)")
}
