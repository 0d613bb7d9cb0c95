/*
 * base/alloc_fault.h - the allocation-failure build (make ALLOC_FAULTS=1, STYLE rule 18).
 *
 * Only that build force-includes this header (-include) in every file of src/ and tools/,
 * so Bulwark's own malloc, calloc, realloc, aligned_alloc, strdup, strndup and asprintf
 * go through the counters in alloc.c; the libraries' allocations (libunbound, OpenSSL,
 * libyaml...) and the tests' own do not. A normal build neither includes it nor compiles
 * alloc.c's hooks: the macros do not exist there, so they cost nothing.
 *
 * The system headers come first, so their declarations of malloc & co. are seen before
 * the macros rename the calls (include guards keep them from being read again).
 *
 * Environment (read at the first counted allocation):
 *   BW_ALLOC_FAIL_AT=N    the Nth counted allocation (1-based) returns NULL
 *   BW_ALLOC_FAIL_ALL=1   and every one after it
 *   BW_ALLOC_COUNT=1      at exit, print "bw-alloc: N allocations" to stderr
 * Thread-safe: one atomic counter for the process.
 */
#ifndef BW_ALLOC_FAULT_H
#define BW_ALLOC_FAULT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *bw_alloc_malloc(size_t n);
void *bw_alloc_calloc(size_t nmemb, size_t n);
void *bw_alloc_realloc(void *p, size_t n);
void *bw_alloc_aligned_alloc(size_t align, size_t n);
char *bw_alloc_strdup(const char *s);
char *bw_alloc_strndup(const char *s, size_t n);
int bw_alloc_asprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define malloc(n) bw_alloc_malloc(n)
#define calloc(m, n) bw_alloc_calloc(m, n)
#define realloc(p, n) bw_alloc_realloc(p, n)
#define aligned_alloc(a, n) bw_alloc_aligned_alloc(a, n)
#define strdup(s) bw_alloc_strdup(s)
#define strndup(s, n) bw_alloc_strndup(s, n)
#define asprintf(...) bw_alloc_asprintf(__VA_ARGS__)

#endif
