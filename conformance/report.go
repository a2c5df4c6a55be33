package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// Summary counts the verdicts of a report.
type Summary struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"` // MUST failures, and SHOULD failures when strict
	Warned  int `json:"warned"` // SHOULD failures when not strict
	Skipped int `json:"skipped"`
	Errors  int `json:"errors"`
}

// Summarize counts r's verdicts; strict counts a failed SHOULD as failed.
func (r *Report) Summarize(strict bool) Summary {
	var s Summary
	for _, res := range r.Results {
		switch {
		case res.Verdict == Pass:
			s.Passed++
		case res.Verdict == Fail && (res.Level == MUST || strict):
			s.Failed++
		case res.Verdict == Fail:
			s.Warned++
		case res.Verdict == Skip:
			s.Skipped++
		default:
			s.Errors++
		}
	}
	return s
}

// WriteJSON writes reports as one JSON document, always of the same shape
// (schema: testdata/report.schema.json): {"strict", "summary", "reports":
// [{"target", "options", "results": [...], "summary", ...}]}.
func WriteJSON(w io.Writer, reports []*Report, strict bool) error {
	type reportDoc struct {
		*Report
		Summary Summary `json:"summary"`
	}
	doc := struct {
		Strict  bool        `json:"strict"`
		Summary Summary     `json:"summary"`
		Reports []reportDoc `json:"reports"`
	}{Strict: strict, Reports: []reportDoc{}}
	for _, r := range reports {
		s := r.Summarize(strict)
		doc.Reports = append(doc.Reports, reportDoc{r, s})
		doc.Summary.Passed += s.Passed
		doc.Summary.Failed += s.Failed
		doc.Summary.Warned += s.Warned
		doc.Summary.Skipped += s.Skipped
		doc.Summary.Errors += s.Errors
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string `xml:"name,attr"`
	Tests    int    `xml:"tests,attr"`
	Failures int    `xml:"failures,attr"`
	Errors   int    `xml:"errors,attr"`
	Skipped  int    `xml:"skipped,attr"`
	Time     string `xml:"time,attr"`
	// Properties are the run's settings: the transport.
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes reports as JUnit XML, a testsuite per report and a
// testcase per requirement. A failed SHOULD is a failure only when strict;
// otherwise it passes with the finding in system-out.
func WriteJUnit(w io.Writer, reports []*Report, strict bool) error {
	var doc junitSuites
	for _, r := range reports {
		doc.Suites = append(doc.Suites, r.junit(strict))
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func (r *Report) junit(strict bool) junitSuite {
	s := junitSuite{Name: "echoconform: " + r.Target, Time: secs(r.Duration.Seconds()),
		Properties: []junitProperty{{Name: "transport", Value: r.Transport}}}
	for _, res := range r.Results {
		c := junitCase{Name: res.ID + " " + res.Title, Classname: "echoconform." + string(res.Level), Time: secs(res.Duration.Seconds())}
		body := xmlSafe(FormatResult(res))
		switch {
		case res.Verdict == Fail && (res.Level == MUST || strict):
			c.Failure = &junitMessage{Message: xmlSafe(firstLine(res.Message)), Type: string(res.Level), Body: body}
			s.Failures++
		case res.Verdict == Fail:
			c.SystemOut = "SHOULD not met:\n" + body
		case res.Verdict == Error:
			c.Error = &junitMessage{Message: xmlSafe(firstLine(res.Message)), Body: body}
			s.Errors++
		case res.Verdict == Skip:
			c.Skipped = &junitMessage{Message: xmlSafe(res.Message)}
			s.Skipped++
		default:
			c.SystemOut = xmlSafe(res.Message)
		}
		s.Cases = append(s.Cases, c)
	}
	s.Tests = len(s.Cases)
	return s
}

func secs(f float64) string { return fmt.Sprintf("%.3f", f) }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// xmlSafe drops the characters XML 1.0 cannot carry (server bytes are
// quoted already, but a server's output may hold control characters).
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r != 0xFFFE && r != 0xFFFF) {
			return r
		}
		return -1
	}, s)
}
