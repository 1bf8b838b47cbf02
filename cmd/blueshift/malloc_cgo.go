//go:build linux && cgo

package main

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
static void bs_malloc_tune(void) { mallopt(M_ARENA_MAX, 2); }
static void bs_malloc_trim(void) { malloc_trim(0); }
#else
static void bs_malloc_tune(void) {}
static void bs_malloc_trim(void) {}
#endif
*/
import "C"

// Pebble's block cache and memtables are C allocations when the binary is
// built with cgo, outside Go's heap and its memory limit. glibc's malloc
// gives each busy thread an arena of its own (up to 8 per core) and keeps
// what is freed inside them: the blocks the cache evicts and the memtables
// it flushes stayed resident. Two arenas and a trim now and then give that
// memory back.

// tuneMalloc caps glibc's arenas; called once, before the index opens.
func tuneMalloc() { C.bs_malloc_tune() }

// trimMalloc returns the free memory of glibc's arenas to the system.
func trimMalloc() { C.bs_malloc_trim() }
