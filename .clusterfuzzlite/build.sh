#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build of every native Go fuzz target (libFuzzer).
# conformance_test.go-style external test packages are not supported by the
# v2 builder, so every target sits in an in-package test file, under a name
# unique in the project. TestClusterFuzzLiteBuild keeps this list equal to
# what `go test -list '^Fuzz' ./...` finds.
compile_native_go_fuzzer_v2 github.com/echoconform/echoconform/conformance FuzzVerifyReply FuzzVerifyReply
compile_native_go_fuzzer_v2 github.com/echoconform/echoconform/conformance FuzzExpandArgs FuzzExpandArgs
compile_native_go_fuzzer_v2 github.com/echoconform/echoconform/conformance FuzzHarnessVerdict FuzzHarnessVerdict
compile_native_go_fuzzer_v2 github.com/echoconform/echoconform/echo FuzzTemplate FuzzTemplate
compile_native_go_fuzzer_v2 github.com/echoconform/echoconform/fuzz FuzzStreamEcho FuzzStreamEcho
compile_native_go_fuzzer_v2 github.com/echoconform/echoconform/fuzz FuzzOneshotEcho FuzzOneshotEcho
compile_native_go_fuzzer_v2 github.com/echoconform/echoconform/fuzz FuzzInterleavedEcho FuzzInterleavedEcho
compile_native_go_fuzzer_v2 github.com/echoconform/echoconform/fuzz FuzzStreamRapid FuzzStreamRapid
compile_native_go_fuzzer_v2 github.com/echoconform/echoconform/internal/cli FuzzParseArgs FuzzParseArgs
