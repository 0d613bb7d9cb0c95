/*
 * base/suffix.c - the Public Suffix List (libpsl), loaded once: the registrable domain of
 * a name, and whether a public suffix is ICANN's. The config checks protected domains
 * with it, the guard builds and checks look-alikes with it.
 */
#include <libpsl.h>
#include <pthread.h>

#include "base/base.h"

static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static const psl_ctx_t *psl;

static void psl_init(void)
{
	/* the newest of the built-in list and Debian's publicsuffix file */
	psl = psl_latest(NULL);
	if (!psl)
		psl = psl_builtin();
}

const char *bw_registrable_domain(const char *name)
{
	pthread_once(&psl_once, psl_init);
	if (!psl)
		return NULL;
	return psl_registrable_domain(psl, name);
}

bool bw_suffix_is_icann(const char *suffix)
{
	pthread_once(&psl_once, psl_init);
	return !psl || psl_is_public_suffix2(psl, suffix, PSL_TYPE_ICANN) != 0;
}
