// Package echoconform holds SPEC.md, the requirements that the conformance
// harness checks. The harness reads requirement IDs, levels and texts from
// this copy, so the document stays the single source of truth.
package echoconform

import _ "embed"

// Spec is the text of SPEC.md.
//
//go:embed SPEC.md
var Spec string
