// Package domtest reads an HTML document for tests: the HTML report's
// tests assert on its elements, whether the page comes from the writer or
// from a browser's DOM.
package domtest

import (
	"io"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/net/html"
)

// Parse parses an HTML document.
func Parse(r io.Reader) (*html.Node, error) { return html.Parse(r) }

// All returns the elements below n, in document order, for which match
// holds.
func All(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			out = append(out, d)
		}
	}
	return out
}

// Tag matches elements by tag name and classes (each must be present).
func Tag(tag string, classes ...string) func(*html.Node) bool {
	return func(n *html.Node) bool {
		if n.Data != tag {
			return false
		}
		have := strings.Fields(Attr(n, "class"))
		for _, c := range classes {
			if !slices.Contains(have, c) {
				return false
			}
		}
		return true
	}
}

// ByID returns the element with id, or nil.
func ByID(n *html.Node, id string) *html.Node {
	found := All(n, func(d *html.Node) bool { return Attr(d, "id") == id })
	if len(found) == 0 {
		return nil
	}
	return found[0]
}

// Attr returns n's attribute key, or "".
func Attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// HasAttr reports whether n has the attribute key.
func HasAttr(n *html.Node, key string) bool {
	return slices.ContainsFunc(n.Attr, func(a html.Attribute) bool { return a.Key == key })
}

// Text returns the text below n.
func Text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

var remote = regexp.MustCompile(`(?i)^\s*(https?:|//|ftp:|ws:|wss:)`)

// Requests lists what in the document would make a browser fetch
// something: an attribute that names a remote resource (src, href, srcset,
// poster, data, action, xlink:href), a <link> or <script src> at all, an
// @import or a url() that is not a fragment or data: in CSS.
func Requests(doc *html.Node) []string {
	var out []string
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "link" || (n.Data == "script" && HasAttr(n, "src")) || n.Data == "iframe" || n.Data == "object" || n.Data == "embed" {
			out = append(out, "<"+n.Data+">")
		}
		for _, a := range n.Attr {
			switch a.Key {
			case "src", "href", "srcset", "poster", "data", "action", "formaction", "background":
				if remote.MatchString(a.Val) || (a.Key != "href" && !strings.HasPrefix(a.Val, "data:")) {
					out = append(out, n.Data+" "+a.Key+"="+a.Val)
				}
			case "style":
				out = append(out, cssRequests(a.Val)...)
			}
			if a.Namespace == "xlink" && a.Key == "href" && !strings.HasPrefix(a.Val, "#") {
				out = append(out, n.Data+" xlink:href="+a.Val)
			}
		}
		if n.Data == "style" {
			out = append(out, cssRequests(Text(n))...)
		}
	}
	return out
}

var cssURL = regexp.MustCompile(`(?i)@import|url\(\s*['"]?([^'")]*)`)

func cssRequests(css string) []string {
	var out []string
	for _, m := range cssURL.FindAllStringSubmatch(css, -1) {
		if strings.EqualFold(m[0], "@import") || (!strings.HasPrefix(m[1], "#") && !strings.HasPrefix(m[1], "data:")) {
			out = append(out, "css "+m[0])
		}
	}
	return out
}

// CSP returns the Content-Security-Policy a <meta http-equiv> sets, or "".
func CSP(doc *html.Node) string {
	for _, m := range All(doc, Tag("meta")) {
		if strings.EqualFold(Attr(m, "http-equiv"), "Content-Security-Policy") {
			return Attr(m, "content")
		}
	}
	return ""
}
