package mutant

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/echoconform/echoconform/echo"
)

var kebab = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

func TestZoo(t *testing.T) {
	seen := map[string]bool{}
	faults := 0
	for _, m := range All() {
		require.Regexp(t, kebab, m.Name)
		require.False(t, seen[m.Name], "two mutants called %s", m.Name)
		seen[m.Name] = true
		require.NotEmpty(t, m.Doc, m.Name)
		require.NotEmpty(t, m.Models, m.Name)
		require.NotEmpty(t, m.Protocols, m.Name)
		for _, model := range m.Models {
			require.Contains(t, []string{ModelThread, ModelFork}, model, m.Name)
		}
		got, ok := Lookup(m.Name)
		require.True(t, ok)
		require.Equal(t, m.Name, got.Name)
		if !m.Correct() {
			faults++
		}
	}
	require.GreaterOrEqual(t, faults, 25, "mutants with a fault")
	for _, name := range []string{"correct", "slow-listen", "slow-write"} {
		m, ok := Lookup(name)
		require.True(t, ok, name)
		require.True(t, m.Correct(), name)
		require.Equal(t, []string{ModelThread, ModelFork}, m.Models, name)
	}
	_, ok := Lookup("no-such-mutant")
	require.False(t, ok)
}

func TestCommand(t *testing.T) {
	argv := Command("", "drop-nul", ModelFork, echo.Stream, "{pid}: ")
	require.Equal(t, flagMutant+"drop-nul", argv[1])
	require.Contains(t, argv, "-addr={addr}")
	require.Contains(t, argv, "-prefix={pid}: ")
	require.Contains(t, argv, "-model=fork")
	require.Contains(t, argv, "-protocol=stream")
	require.True(t, strings.HasPrefix(argv[0], "/"), "an absolute path: %s", argv[0])
	require.Equal(t, "/usr/local/bin/echomutant", Command("/usr/local/bin/echomutant", "drop-nul", ModelFork, echo.Stream, "")[0])
}

func TestChildConfig(t *testing.T) {
	for _, cc := range []childConfig{
		{name: "correct", protocol: echo.Stream, maxMsg: 1024, prefix: "{pid}|{ppid}: "},
		{name: "accept-blocked-by-idle", protocol: echo.Oneshot, maxMsg: 7, prefix: "", first: []byte{0, '|', 0xff}},
	} {
		got, err := decodeChild(cc.encode())
		require.NoError(t, err)
		require.Equal(t, cc.name, got.name)
		require.Equal(t, cc.protocol, got.protocol)
		require.Equal(t, cc.maxMsg, got.maxMsg)
		require.Equal(t, cc.prefix, got.prefix)
		require.True(t, slices.Equal(cc.first, got.first) || len(cc.first)+len(got.first) == 0)
	}
	_, err := decodeChild("v0|x")
	require.Error(t, err)
}

func TestCheck(t *testing.T) {
	m, _ := Lookup("zombies")
	require.Error(t, m.check(ModelThread, echo.Stream))
	require.NoError(t, m.check(ModelFork, echo.Stream))
	require.Error(t, m.check(ModelFork, echo.Oneshot))
}
