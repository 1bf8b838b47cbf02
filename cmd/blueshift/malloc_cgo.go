//go:build linux && cgo

package main

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
// bs_malloc_tune runs when the program is loaded, before the Go runtime
// starts its threads: glibc computes its cap on arenas once, when a thread
// first needs one, and every thread that allocated before a later mallopt
// kept the arena it had made (the daemon called this from Run, by which
// time a few threads had). MALLOC_ARENA_MAX in the environment wins.
__attribute__((constructor)) static void bs_malloc_tune(void) {
	if (getenv("MALLOC_ARENA_MAX") == NULL) mallopt(M_ARENA_MAX, 2);
}
static void bs_malloc_trim(void) { malloc_trim(0); }
#else
static void bs_malloc_trim(void) {}
#endif
*/
import "C"

// Pebble's block cache and memtables are C allocations when the binary is
// built with cgo, outside Go's heap and its memory limit. glibc's malloc
// gives each busy thread an arena of its own (up to 8 per core) and keeps
// what is freed inside them: the blocks the cache evicts and the memtables
// it flushes stayed resident. Two arenas (set as the program loads, above)
// and a trim now and then give that memory back.

// trimMalloc returns the free memory of glibc's arenas to the system.
func trimMalloc() { C.bs_malloc_trim() }
