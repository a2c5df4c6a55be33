//go:build !race

package conformance_test

const timeScale = 1
