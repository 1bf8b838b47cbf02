//go:build !linux || !cgo

package main

// Without cgo Pebble allocates from Go's heap, and on other systems the C
// library's malloc is not glibc's: nothing to tune (see malloc_cgo.go).

func trimMalloc() {}
