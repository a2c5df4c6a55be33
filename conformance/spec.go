package conformance

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/echoconform/echoconform"
)

// Level is how strongly SPEC.md asks for a requirement.
type Level string

const (
	MUST   Level = "MUST"
	SHOULD Level = "SHOULD"
)

// Requirement is one row of SPEC.md.
type Requirement struct {
	ID    string // e.g. "STREAM-1"
	Level Level
	Title string // a few words, for one-line reports
	Text  string // the requirement itself
}

var specRow = regexp.MustCompile(`^\| ([A-Z]+-[0-9]+) \| (MUST|SHOULD) \| ([^|]+) \| (.*) \|$`)

// parseSpec reads the requirement rows out of SPEC.md.
func parseSpec(md string) ([]Requirement, error) {
	var reqs []Requirement
	seen := map[string]bool{}
	for _, line := range strings.Split(md, "\n") {
		m := specRow.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		if seen[m[1]] {
			return nil, fmt.Errorf("SPEC.md: requirement %s appears twice", m[1])
		}
		seen[m[1]] = true
		reqs = append(reqs, Requirement{ID: m[1], Level: Level(m[2]), Title: m[3], Text: m[4]})
	}
	return reqs, nil
}

// Requirements returns every requirement of SPEC.md, in document order.
func Requirements() []Requirement {
	return append([]Requirement(nil), requirements...)
}

var requirements = func() []Requirement {
	r, err := parseSpec(echoconform.Spec)
	if err != nil {
		panic(err)
	}
	return r
}()

func requirement(id string) (Requirement, bool) {
	for _, r := range requirements {
		if r.ID == id {
			return r, true
		}
	}
	return Requirement{}, false
}
