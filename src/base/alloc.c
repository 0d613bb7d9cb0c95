/*
 * base/alloc.c - the counted allocator of the allocation-failure build (alloc_fault.h).
 * Compiled to nothing in a normal build.
 */
#ifdef BW_ALLOC_FAULTS

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* this file calls the real allocator: undo the macros of the forced include */
#undef malloc
#undef calloc
#undef realloc
#undef aligned_alloc
#undef strdup
#undef strndup
#undef asprintf

#include "base/alloc_fault.h"

static atomic_ulong count;    /* counted allocations so far */
static atomic_int ready;      /* 0: environment not read yet, 1: being read, 2: read */
static unsigned long fail_at; /* 0: never */
static bool fail_all;

static void print_count(void)
{
	/* one write, so a sweep can parse it even from a busy stderr */
	char line[64];
	int n = snprintf(line, sizeof(line), "bw-alloc: %lu allocations\n", atomic_load(&count));
	if (n > 0)
		fputs(line, stderr);
}

static void read_env(void)
{
	int expect = 0;
	if (!atomic_compare_exchange_strong(&ready, &expect, 1)) {
		while (atomic_load(&ready) != 2)
			; /* another thread is reading it: a few instructions */
		return;
	}
	const char *s = getenv("BW_ALLOC_FAIL_AT");
	if (s && *s)
		fail_at = strtoul(s, NULL, 10);
	s = getenv("BW_ALLOC_FAIL_ALL");
	fail_all = s && strcmp(s, "1") == 0;
	s = getenv("BW_ALLOC_COUNT");
	if (s && strcmp(s, "1") == 0)
		atexit(print_count);
	atomic_store(&ready, 2);
}

/* Counts one allocation; true when it must fail. */
static bool should_fail(void)
{
	if (atomic_load_explicit(&ready, memory_order_acquire) != 2)
		read_env();
	unsigned long n = atomic_fetch_add(&count, 1) + 1;
	if (fail_at == 0)
		return false;
	return n == fail_at || (fail_all && n > fail_at);
}

void *bw_alloc_malloc(size_t n)
{
	return should_fail() ? NULL : malloc(n);
}

void *bw_alloc_calloc(size_t nmemb, size_t n)
{
	return should_fail() ? NULL : calloc(nmemb, n);
}

void *bw_alloc_realloc(void *p, size_t n)
{
	return should_fail() ? NULL : realloc(p, n); /* p stays valid, as on a real failure */
}

void *bw_alloc_aligned_alloc(size_t align, size_t n)
{
	return should_fail() ? NULL : aligned_alloc(align, n);
}

char *bw_alloc_strdup(const char *s)
{
	return should_fail() ? NULL : strdup(s);
}

char *bw_alloc_strndup(const char *s, size_t n)
{
	return should_fail() ? NULL : strndup(s, n);
}

int bw_alloc_asprintf(char **out, const char *fmt, ...)
{
	if (should_fail())
		return -1; /* *out is undefined, as glibc's */
	va_list ap;
	va_start(ap, fmt);
	int rc = vasprintf(out, fmt, ap);
	va_end(ap);
	return rc;
}

#else
/* ISO C wants a translation unit to declare something */
typedef int bw_alloc_unused;
#endif
