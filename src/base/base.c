/* base/base.c - errors, logging, clocks, hashing, size parsing, snapshot publishing. */
#include "base/base.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

const char *bw_strerror(int err)
{
	switch (err) {
	case BW_OK: return "success";
	case BW_ENOMEM: return "out of memory";
	case BW_EINVAL: return "invalid value";
	case BW_EMALFORMED: return "malformed input";
	case BW_ESPACE: return "does not fit";
	case BW_ENOENT: return "not found";
	case BW_EIO: return "I/O error";
	case BW_ERANGE: return "out of range";
	case BW_EAGAIN: return "try again";
	case BW_ENOTSUP: return "not supported";
	case BW_ESHORT: return "too short";
	case BW_ESTALE: return "expired";
	case BW_EREFUSED: return "refused";
	default: return "unknown error";
	}
}

/* ---- logging ---- */
static _Atomic int log_level = BW_LOG_INFO;
static bool log_syslog;

void bw_log_init(enum bw_log_level level, bool to_syslog)
{
	log_level = level;
	log_syslog = to_syslog;
	if (to_syslog)
		openlog("bulwark", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void bw_log_set_level(enum bw_log_level level)
{
	log_level = level;
}

bool bw_log_enabled(enum bw_log_level level)
{
	return (int)level <= log_level;
}

static void vlog(enum bw_log_level level, const char *fmt, va_list ap)
{
	static const char *names[] = {"error", "warning", "info", "debug"};
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_syslog) {
		syslog(prio[level], "%s", msg);
		return;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ bulwark %s: %s\n", tm.tm_year + 1900,
		tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		names[level], msg);
}

void bw_log(enum bw_log_level level, const char *fmt, ...)
{
	if (!bw_log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void bw_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(BW_LOG_ERR, fmt, ap);
	va_end(ap);
	abort();
}

bool bw_assert_failed(const char *file, int line, const char *what)
{
#ifdef NDEBUG
	bw_err("%s:%d: assertion failed: %s", file, line, what);
	return true;
#else
	bw_die("%s:%d: assertion failed: %s", file, line, what);
#endif
}

/* ---- clocks ---- */
uint64_t bw_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bw_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void bw_deadline_ms(struct timespec *out, uint64_t ms)
{
	clock_gettime(CLOCK_REALTIME, out);
	out->tv_sec += (time_t)(ms / 1000);
	out->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (out->tv_nsec >= 1000000000L) {
		out->tv_sec++;
		out->tv_nsec -= 1000000000L;
	}
}

uint32_t bw_now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)ts.tv_sec;
}

/* ---- hashing: 8 bytes at a time, multiply-xorshift; final avalanche ---- */
uint64_t bw_hash(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *p = data;
	const size_t total = len;
	uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		h ^= bw_hash_mix(v + 0x2545f4914f6cdd1dULL);
		h = (h << 27 | h >> 37) * 0x9e3779b97f4a7c15ULL;
		p += 8;
		len -= 8;
	}
	/* the last 1..7 bytes in one or two loads, never byte by byte */
	uint64_t v = 0;
	if (len) {
		if (total >= 8) {
			memcpy(&v, p + len - 8, 8); /* overlaps bytes already mixed: fine */
		} else if (len >= 4) {
			uint32_t a, b;
			memcpy(&a, p, 4);
			memcpy(&b, p + len - 4, 4);
			v = (uint64_t)a << 32 | b;
		} else {
			v = (uint64_t)p[0] << 16 | (uint64_t)p[len >> 1] << 8 | p[len - 1];
		}
	}
	h ^= v + len;
	return bw_hash_mix(h);
}

/* ---- sizes ---- */
int bw_parse_size(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !isdigit((unsigned char)*s))
		return BW_EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return BW_ERANGE;
	uint64_t mul = 1;
	switch (*end) {
	case 'k': case 'K': mul = 1ULL << 10; end++; break;
	case 'm': case 'M': mul = 1ULL << 20; end++; break;
	case 'g': case 'G': mul = 1ULL << 30; end++; break;
	default: break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return BW_EINVAL;
	if (v > UINT64_MAX / mul)
		return BW_ERANGE;
	*out = v * mul;
	return 0;
}

/* ---- snapshot publishing ---- */
void bw_snapref_init(struct bw_snapref *r, void *initial, unsigned nreaders)
{
	bw_require(nreaders <= BW_SNAPREF_MAX_READERS);
	atomic_store(&r->current, initial);
	r->nreaders = nreaders;
	for (unsigned i = 0; i < BW_SNAPREF_MAX_READERS; i++)
		atomic_store(&r->slot[i].held, NULL);
}

void *bw_snapref_swap(struct bw_snapref *r, void *next)
{
	void *old = atomic_exchange(&r->current, next);
	if (!old)
		return NULL;
	for (unsigned i = 0; i < r->nreaders; i++) {
		while (atomic_load(&r->slot[i].held) == old)
			usleep(200);
	}
	return old;
}

bool bw_sockaddr_addr(const struct sockaddr *sa, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	const void *bytes;
	if (sa && sa->sa_family == AF_INET)
		bytes = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa && sa->sa_family == AF_INET6)
		bytes = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else
		return false;
	if (!inet_ntop(sa->sa_family, bytes, a, sizeof(a)))
		return false;
	snprintf(out, cap, "%s", a);
	return true;
}
