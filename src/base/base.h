/*
 * base/base.h - small building blocks every module needs.
 *
 * Owns: the error codes (BW_E*), logging, clocks, hashing, the wire cursor used by
 * every parser of untrusted bytes, the snapshot publisher (bw_snapref) that lets
 * workers read immutable structures while a reloader swaps them, and address prefixes
 * (struct bw_cidr: parsed by conf and policy, matched per query by core and policy), and
 * the Public Suffix List lookups (conf checks protected domains, the guard matches).
 *
 * Thread safety: everything here is thread-safe except bw_log_init(), which is
 * called once at start-up before threads exist.
 */
#ifndef BW_BASE_H
#define BW_BASE_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- errors (STYLE rule 13): 0 is success, negative BW_E* otherwise ---- */
enum {
	BW_OK = 0,
	BW_ENOMEM = -1,     /* out of memory */
	BW_EINVAL = -2,     /* invalid argument or value */
	BW_EMALFORMED = -3, /* malformed input (packet, file, feed line) */
	BW_ESPACE = -4,     /* output does not fit the buffer */
	BW_ENOENT = -5,     /* not found */
	BW_EIO = -6,        /* I/O error; see errno */
	BW_ERANGE = -7,     /* value out of range */
	BW_EAGAIN = -8,     /* try again later */
	BW_ENOTSUP = -9,    /* not supported */
	BW_ESHORT = -10,    /* input too short to even read the header */
	BW_ESTALE = -11,    /* found, but expired */
	BW_EREFUSED = -12,  /* refused by policy or access control */
};
const char *bw_strerror(int err);

#define BW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BW_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BW_MAX(a, b) ((a) > (b) ? (a) : (b))
#define BW_LIKELY(x) __builtin_expect(!!(x), 1)
#define BW_UNLIKELY(x) __builtin_expect(!!(x), 0)

/*
 * Two kinds of assert (STYLE rule 15). bw_require() aborts: for start-up invariants.
 * bw_fails() logs and evaluates to true in release builds (aborts in debug builds), so a
 * strange query returns an error instead of killing the server:
 *     if (bw_fails(len <= cap)) return BW_EINVAL;
 */
#define bw_require(cond)                                                                         \
	do {                                                                                     \
		if (BW_UNLIKELY(!(cond)))                                                        \
			bw_die("%s:%d: requirement failed: %s", __FILE__, __LINE__, #cond);      \
	} while (0)
#define bw_fails(cond) (BW_UNLIKELY(!(cond)) ? bw_assert_failed(__FILE__, __LINE__, #cond) : false)
bool bw_assert_failed(const char *file, int line, const char *what);

/* ---- logging ---- */
enum bw_log_level { BW_LOG_ERR = 0, BW_LOG_WARN = 1, BW_LOG_INFO = 2, BW_LOG_DEBUG = 3 };
void bw_log_init(enum bw_log_level level, bool to_syslog);
void bw_log_set_level(enum bw_log_level level);
bool bw_log_enabled(enum bw_log_level level);
void bw_log(enum bw_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void bw_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define bw_err(...) bw_log(BW_LOG_ERR, __VA_ARGS__)
#define bw_warn(...) bw_log(BW_LOG_WARN, __VA_ARGS__)
#define bw_info(...) bw_log(BW_LOG_INFO, __VA_ARGS__)
#define bw_debug(...)                                                                            \
	do {                                                                                     \
		if (bw_log_enabled(BW_LOG_DEBUG))                                                \
			bw_log(BW_LOG_DEBUG, __VA_ARGS__);                                       \
	} while (0)

/* ---- clocks ---- */
uint64_t bw_now_ms(void);  /* monotonic milliseconds */
uint32_t bw_now_sec(void); /* monotonic seconds, cheap (coarse clock) */
uint64_t bw_now_ns(void);  /* monotonic nanoseconds, precise */
struct timespec;
/* The wall-clock time ms from now, for pthread_cond_timedwait() (default condvar clock). */
void bw_deadline_ms(struct timespec *out, uint64_t ms);

/* ---- hashing: fast, seeded, not cryptographic; good spread for hash tables ----
 * bw_hash() is for tables whose keys clients cannot choose (the policy's, built from
 * feeds): its seed does not stop someone who knows the function from computing colliding
 * keys. Tables keyed by what clients send (names, addresses) use bw_hash_keyed(), a keyed
 * PRF (SipHash-1-3) under a random key: without the key, collisions cannot be computed. */
uint64_t bw_hash(const void *data, size_t len, uint64_t seed);
struct bw_hash_key {
	uint64_t k0, k1;
};
/* A fresh random key (getrandom(); the clock mixed with the address of key if the kernel
 * has no entropy to give yet, which only happens very early at boot). */
void bw_hash_key_random(struct bw_hash_key *key);
/* SipHash-1-3 of data under key. Thread-safe. */
uint64_t bw_hash_keyed(const void *data, size_t len, const struct bw_hash_key *key);
static inline uint64_t bw_hash_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* ---- the wire cursor (STYLE rule 7): bounded reads with a sticky error ----
 * Every read checks what remains; after the first failure all reads return 0 and
 * `error` stays set, so a parser reads several fields and checks once. */
struct bw_cursor {
	const uint8_t *base; /* start of the whole message (for compression pointers) */
	size_t len;          /* length of the whole message */
	size_t pos;          /* next byte to read */
	int error;           /* 0 or the first BW_E* */
};
static inline void bw_cursor_init(struct bw_cursor *c, const uint8_t *p, size_t len)
{
	c->base = p;
	c->len = len;
	c->pos = 0;
	c->error = 0;
}
static inline size_t bw_cursor_left(const struct bw_cursor *c)
{
	return c->error ? 0 : c->len - c->pos;
}
static inline bool bw_cursor_need(struct bw_cursor *c, size_t n)
{
	if (c->error)
		return false;
	if (n > c->len - c->pos) {
		c->error = BW_EMALFORMED;
		return false;
	}
	return true;
}
static inline uint8_t bw_cursor_u8(struct bw_cursor *c)
{
	if (!bw_cursor_need(c, 1))
		return 0;
	return c->base[c->pos++];
}
static inline uint16_t bw_cursor_u16(struct bw_cursor *c)
{
	if (!bw_cursor_need(c, 2))
		return 0;
	uint16_t v = (uint16_t)((c->base[c->pos] << 8) | c->base[c->pos + 1]);
	c->pos += 2;
	return v;
}
static inline uint32_t bw_cursor_u32(struct bw_cursor *c)
{
	if (!bw_cursor_need(c, 4))
		return 0;
	const uint8_t *p = c->base + c->pos;
	c->pos += 4;
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void bw_cursor_skip(struct bw_cursor *c, size_t n)
{
	if (bw_cursor_need(c, n))
		c->pos += n;
}
static inline const uint8_t *bw_cursor_ptr(const struct bw_cursor *c)
{
	return c->base + c->pos;
}

static inline void bw_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void bw_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline uint16_t bw_get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t bw_get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* ---- snapshot publishing: one writer swaps, many readers hold ----
 * A tiny hazard-pointer scheme: each reader (worker) owns one slot. A reader calls
 * bw_snapref_acquire() to get the current snapshot and bw_snapref_release() when done
 * (at the end of a packet batch). The writer calls bw_snapref_swap(), which returns the
 * previous snapshot only once no reader slot holds it any more, so it can be freed. */
#define BW_SNAPREF_MAX_READERS 256
struct bw_snapref {
	_Atomic(void *) current;
	unsigned nreaders;
	struct {
		_Atomic(void *) held;
		char pad[64 - sizeof(void *)];
	} slot[BW_SNAPREF_MAX_READERS];
};
void bw_snapref_init(struct bw_snapref *r, void *initial, unsigned nreaders);
static inline void *bw_snapref_acquire(struct bw_snapref *r, unsigned reader)
{
	void *s;
	do {
		s = atomic_load(&r->current);
		atomic_store(&r->slot[reader].held, s);
	} while (s != atomic_load(&r->current));
	return s;
}
static inline void bw_snapref_release(struct bw_snapref *r, unsigned reader)
{
	atomic_store_explicit(&r->slot[reader].held, NULL, memory_order_release);
}
/* Publishes `next`, waits until no reader holds the previous one, and returns it. */
void *bw_snapref_swap(struct bw_snapref *r, void *next);

/* ---- parse a size with K/M/G suffix ("256M") into bytes; 0 on success ---- */
int bw_parse_size(const char *s, uint64_t *out);

/* The address of an AF_INET/AF_INET6 sockaddr as text, without the port ("192.0.2.1",
 * "2001:db8::1"). Returns false (out untouched) for NULL or another family. */
#define BW_ADDRSTRLEN 46 /* INET6_ADDRSTRLEN */
struct sockaddr;
bool bw_sockaddr_addr(const struct sockaddr *sa, char *out, size_t cap);

/* ---- address prefixes (cidr.c) ---- */
/* A CIDR prefix (access control, profile clients, CLIENT-IP and response-IP rules):
 * family AF_INET or AF_INET6, address bytes in network order (4 or 16 used), prefix
 * length. */
struct bw_cidr {
	int family;
	uint8_t addr[16];
	uint8_t prefix;
};
/* Parses "192.0.2.0/24", "2001:db8::/32" or a bare address (a host route) from s[0..len)
 * (not NUL-terminated); host bits past the prefix are cleared. Returns 0, BW_EINVAL (not
 * an address, bad prefix syntax) or BW_ERANGE (prefix longer than the family allows). */
int bw_cidr_parse(const char *s, size_t len, struct bw_cidr *out);
/* Does the address (AF_INET/AF_INET6 sockaddr) match the CIDR? An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) matches IPv4 prefixes. Runs per query: no allocation, no lock. */
bool bw_cidr_match(const struct bw_cidr *net, const struct sockaddr *sa);
/* A prefix as a hash key: the address length (4 or 16), then the address (AF_INET: 4
 * bytes, AF_INET6: 16) with the bits past `prefix` cleared. Returns 5 or 17. */
size_t bw_prefix_key(int family, const uint8_t *addr, unsigned prefix, uint8_t key[17]);
/* The key of sa's address prefix (AF_INET masked to v4 bits, also an IPv4-mapped IPv6
 * address; AF_INET6 to v6 bits), as bw_prefix_key; 0 for other families or NULL. What
 * "one client" is wherever Bulwark counts per client (connections, rate limits, shares). */
size_t bw_sockaddr_prefix(const struct sockaddr *sa, unsigned v4, unsigned v6, uint8_t key[17]);

/* ---- the Public Suffix List (suffix.c, libpsl; loaded on first use, thread-safe) ---- */
/* The registrable domain of a lower-case text name (no trailing dot): a pointer into
 * name, or NULL when the name is a public suffix itself or has none. */
const char *bw_registrable_domain(const char *name);
/* Is suffix (a public suffix, text) in the ICANN section of the list? false for the
 * private section's hosting and CDN suffixes (github.io, cloudfront.net...). A suffix the
 * list does not know is ICANN's by its implicit "*" rule. */
bool bw_suffix_is_icann(const char *suffix);

#endif
