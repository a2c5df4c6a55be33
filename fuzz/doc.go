// Package fuzz holds native Go fuzz targets over the echo path: arbitrary
// bytes, cut into an arbitrary write schedule, sent to a reference server
// over real loopback sockets, must come back as the prefix followed by the
// same bytes. The targets live in in-package test files (package fuzz), as
// OSS-Fuzz's and ClusterFuzzLite's native Go builds require; their seed
// corpora are checked in under testdata/fuzz, so that a plain go test
// replays every entry.
//
// ECHOCONFORM_FUZZ_SERVER=NAME swaps the reference for a broken server of
// the mutant zoo (internal/mutant), to show that a target finds its bug.
package fuzz
