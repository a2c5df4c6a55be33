package fuzz

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
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

	// The targets go test would find: a top-level func FuzzXxx(*testing.F)
	// in a _test.go file. Parsed here; the go command is asked too, once
	// for all packages, except under -short (it builds every test binary).
	found := declaredTargets(t)
	if !testing.Short() {
		out, err := exec.Command("go", "test", "-list", "^Fuzz", "../...").CombinedOutput()
		require.NoError(t, err, "go test -list: %s", out)
		require.Equal(t, found, listedTargets(string(out)), "the fuzz targets parsed here and those go test lists")
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

// declaredTargets returns "package-path FuzzName" for every fuzz target
// declared in a test file of the module, and checks that names are unique.
func declaredTargets(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{.Dir}}", "../...").Output()
	require.NoError(t, err)
	var found []string
	names := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, dir, _ := strings.Cut(line, " ")
		files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
		require.NoError(t, err)
		for _, f := range files {
			parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.SkipObjectResolution)
			require.NoError(t, err)
			for _, d := range parsed.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Fuzz") || !isFuzzSig(fn.Type) {
					continue
				}
				name := fn.Name.Name
				require.NotContains(t, names, name, "fuzz target %s in both %s and %s", name, names[name], pkg)
				names[name] = pkg
				found = append(found, pkg+" "+name)
			}
		}
	}
	slices.Sort(found)
	return found
}

// isFuzzSig reports whether ft is func(*testing.F).
func isFuzzSig(ft *ast.FuncType) bool {
	if ft.Results != nil || len(ft.Params.List) != 1 || len(ft.Params.List[0].Names) > 1 {
		return false
	}
	star, ok := ft.Params.List[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == "testing" && sel.Sel.Name == "F"
}

// listedTargets parses the output of go test -list over several packages:
// each package's names, then a line "ok  <package> <time>".
func listedTargets(out string) []string {
	var found, names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && strings.HasPrefix(f[0], "Fuzz"):
			names = append(names, f[0])
		case len(f) >= 2 && (f[0] == "ok" || f[0] == "?"):
			for _, n := range names {
				found = append(found, f[1]+" "+n)
			}
			names = nil
		}
	}
	slices.Sort(found)
	return found
}
