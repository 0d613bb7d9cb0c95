/* base/base.c - errors, logging, clocks, hashing, size parsing, snapshot publishing. */
#include "base/base.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
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
static bool log_journal; /* stderr is the journal's: it stamps the time itself */

void bw_log_init(enum bw_log_level level, bool to_syslog)
{
	log_level = level;
	log_syslog = to_syslog;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
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
	if (log_journal) { /* "<3>": the priority, as sd-daemon(3) prefixes it */
		fprintf(stderr, "<%d>%s: %s\n", prio[level], names[level], msg);
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

/* SipHash-1-3 (Aumasson and Bernstein): one compression round per 8-byte word, three
 * finalisation rounds; little-endian words, the length in the top byte of the last. */
#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                  \
	do {                                                                                      \
		v0 += v1;                                                                         \
		v1 = ROTL64(v1, 13);                                                              \
		v1 ^= v0;                                                                         \
		v0 = ROTL64(v0, 32);                                                              \
		v2 += v3;                                                                         \
		v3 = ROTL64(v3, 16);                                                              \
		v3 ^= v2;                                                                         \
		v0 += v3;                                                                         \
		v3 = ROTL64(v3, 21);                                                              \
		v3 ^= v0;                                                                         \
		v2 += v1;                                                                         \
		v1 = ROTL64(v1, 17);                                                              \
		v1 ^= v2;                                                                         \
		v2 = ROTL64(v2, 32);                                                              \
	} while (0)

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

uint64_t bw_hash_keyed(const void *data, size_t len, const struct bw_hash_key *key)
{
	const uint8_t *p = data;
	uint64_t v0 = key->k0 ^ 0x736f6d6570736575ULL;
	uint64_t v1 = key->k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = key->k0 ^ 0x6c7967656e657261ULL;
	uint64_t v3 = key->k1 ^ 0x7465646279746573ULL;
	size_t left = len;
	for (; left >= 8; p += 8, left -= 8) {
		uint64_t m = load_le64(p);
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	uint64_t b = (uint64_t)(len & 0xff) << 56;
	for (size_t i = 0; i < left; i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}
#undef SIPROUND
#undef ROTL64

void bw_hash_key_random(struct bw_hash_key *key)
{
	uint64_t k[2];
	if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k)) {
		/* no entropy yet (very early boot): unpredictable enough for a table */
		k[0] = bw_hash_mix(bw_now_ns() ^ (uint64_t)(uintptr_t)key);
		k[1] = bw_hash_mix(k[0] ^ (uint64_t)time(NULL) ^ (uint64_t)getpid());
	}
	key->k0 = k[0];
	key->k1 = k[1];
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
