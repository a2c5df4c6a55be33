package fuzz

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestClusterFuzzLiteBuild checks what can be checked here of the
// ClusterFuzzLite build (Docker is not available): build.sh compiles
// exactly the targets go test finds, each target sits in an in-package
// test file (the v2 builder breaks on external test packages), and no two
// targets share a name (its lookup is by name).
func TestClusterFuzzLiteBuild(t *testing.T) {
	script, err := os.ReadFile("../.clusterfuzzlite/build.sh")
	require.NoError(t, err)
	line := regexp.MustCompile(`(?m)^compile_native_go_fuzzer_v2 (\S+) (\S+) (\S+)$`)
	var built []string
	for _, m := range line.FindAllStringSubmatch(string(script), -1) {
		require.Equal(t, m[2], m[3], "output name = function name, so that names stay unique")
		built = append(built, m[1]+" "+m[2])
	}

	out, err := exec.Command("go", "list", "../...").Output()
	require.NoError(t, err)
	var found []string
	names := map[string]string{}
	for _, pkg := range strings.Fields(string(out)) {
		list, err := exec.Command("go", "test", "-list", "^Fuzz", pkg).Output()
		require.NoError(t, err, pkg)
		for _, name := range strings.Fields(string(list)) {
			if !strings.HasPrefix(name, "Fuzz") {
				continue
			}
			require.NotContains(t, names, name, "fuzz target %s in both %s and %s", name, names[name], pkg)
			names[name] = pkg
			found = append(found, pkg+" "+name)
		}
	}
	slices.Sort(built)
	slices.Sort(found)
	require.Equal(t, found, built, "build.sh must compile exactly the targets go test finds")
	require.NotEmpty(t, found)

	// Every file that defines a target is an in-package test file.
	files, err := exec.Command("grep", "-rl", "--include=*_test.go", "^func Fuzz", "..").Output()
	require.NoError(t, err)
	for _, f := range strings.Fields(string(files)) {
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly)
		require.NoError(t, err)
		require.False(t, strings.HasSuffix(parsed.Name.Name, "_test"), "%s: package %s is an external test package", f, parsed.Name.Name)
	}
}
