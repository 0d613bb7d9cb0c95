/*
 * guard/newly_seen.c - the memory of registrable domains resolved before.
 *
 * A table of buckets of 8 slots (each domain may live in one of two); a slot is one 64-bit word: a 32-bit fingerprint of the
 * domain, the hour it was first seen and the hour it was last seen (16 bits each, counted
 * from when the memory was born: 7 years). The bucket and the fingerprint come from one
 * 64-bit hash. Workers update slots with relaxed atomics and no lock: two workers that
 * insert into one bucket at the same moment may lose one insertion, which only means that
 * domain is reported new once more. A full bucket forgets its least recently seen domain.
 * Memory: 8 bytes per remembered domain. docs/internals/guard.md has the numbers.
 * Clients choose the domains, so the hash is keyed (bw_hash_keyed) under a random key
 * drawn with the memory and saved with it: nobody can compute a set of domains that
 * share two buckets and push out the ones already remembered.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "guard/guard.h"

#define SLOTS 8
#define MAGIC "BWNSEEN2" /* 1: the bucket hash had a fixed seed (its files are not read) */

struct bw_nseen {
	_Atomic uint64_t *slot; /* nbuckets * SLOTS */
	size_t nbuckets;        /* a power of two */
	uint64_t born;          /* unix seconds */
	struct bw_hash_key key; /* the bucket hash's; saved with the slots */
};

int bw_nseen_new(size_t capacity, struct bw_nseen **out)
{
	struct bw_nseen *ns = calloc(1, sizeof(*ns));
	*out = NULL;
	if (!ns)
		return BW_ENOMEM;
	size_t nb = 1;
	while (nb * SLOTS < capacity)
		nb *= 2;
	ns->nbuckets = nb;
	ns->slot = calloc(nb * SLOTS, sizeof(*ns->slot));
	if (!ns->slot) {
		free(ns);
		return BW_ENOMEM;
	}
	ns->born = (uint64_t)time(NULL);
	bw_hash_key_random(&ns->key);
	*out = ns;
	return 0;
}

void bw_nseen_free(struct bw_nseen *ns)
{
	if (!ns)
		return;
	free(ns->slot);
	free(ns);
}

uint64_t bw_nseen_born(const struct bw_nseen *ns)
{
	return ns->born;
}

size_t bw_nseen_bytes(const struct bw_nseen *ns)
{
	return ns->nbuckets * SLOTS * sizeof(uint64_t);
}

static inline uint64_t make_slot(uint32_t fp, uint16_t first, uint16_t last)
{
	return (uint64_t)fp << 32 | (uint64_t)first << 16 | last;
}

/* Two candidate buckets per domain (the less full one takes a new domain): at the same
 * memory far fewer domains are forgotten early than with one bucket. */
static bool lookup(struct bw_nseen *ns, const char *regdom, size_t len, uint64_t now_s,
		   uint64_t *first_s, bool record)
{
	uint64_t h = bw_hash_keyed(regdom, len, &ns->key);
	uint32_t fp = (uint32_t)(h >> 32);
	if (!fp)
		fp = 1;
	uint64_t hours = now_s > ns->born ? (now_s - ns->born) / 3600 : 0;
	uint16_t hr = hours > 0xffff ? 0xffff : (uint16_t)hours;
	size_t mask = ns->nbuckets - 1;
	size_t b1 = (size_t)h & mask, b2 = (size_t)bw_hash_mix(h ^ fp) & mask;
	_Atomic uint64_t *cand[2] = {ns->slot + b1 * SLOTS, ns->slot + b2 * SLOTS};
	_Atomic uint64_t *empty[2] = {NULL, NULL}, *oldest = NULL;
	unsigned used[2] = {0, 0};
	uint16_t oldest_last = 0xffff;
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < SLOTS; i++) {
			_Atomic uint64_t *sl = &cand[k][i];
			uint64_t v = atomic_load_explicit(sl, memory_order_relaxed);
			if (!v) {
				if (!empty[k])
					empty[k] = sl;
				continue;
			}
			used[k]++;
			uint16_t first = (uint16_t)(v >> 16), last = (uint16_t)v;
			if ((uint32_t)(v >> 32) == fp) {
				if (record && last != hr)
					atomic_store_explicit(sl, make_slot(fp, first, hr),
							      memory_order_relaxed);
				*first_s = ns->born + (uint64_t)first * 3600;
				return true;
			}
			if (!oldest || last < oldest_last) {
				oldest_last = last;
				oldest = sl;
			}
		}
	}
	*first_s = now_s;
	if (!record)
		return false;
	_Atomic uint64_t *at = oldest;
	if (empty[0] || empty[1])
		at = !empty[1] || (empty[0] && used[0] <= used[1]) ? empty[0] : empty[1];
	atomic_store_explicit(at, make_slot(fp, hr, hr), memory_order_relaxed);
	return false;
}

bool bw_nseen_observe(struct bw_nseen *ns, const char *regdom, size_t len, uint64_t now_s,
		      uint64_t *first_s)
{
	return lookup(ns, regdom, len, now_s, first_s, true);
}

bool bw_nseen_peek(const struct bw_nseen *ns, const char *regdom, size_t len, uint64_t now_s,
		   uint64_t *first_s)
{
	return lookup((struct bw_nseen *)ns, regdom, len, now_s, first_s, false);
}

struct header {
	char magic[8];
	uint64_t nbuckets;
	uint64_t born;
	uint64_t key[2];
	uint64_t check;
};

static uint64_t checksum(const struct bw_nseen *ns, const uint64_t *copy)
{
	return bw_hash(copy, ns->nbuckets * SLOTS * sizeof(uint64_t), ns->born);
}

int bw_nseen_save(const struct bw_nseen *ns, const char *path)
{
	size_t n = ns->nbuckets * SLOTS;
	uint64_t *copy = malloc(n * sizeof(*copy));
	char tmp[4096];
	int fd = -1, rc = BW_EIO;
	if (!copy)
		return BW_ENOMEM;
	for (size_t i = 0; i < n; i++)
		copy[i] = atomic_load_explicit(&ns->slot[i], memory_order_relaxed);
	struct header hd = {.nbuckets = ns->nbuckets, .born = ns->born, .key = {ns->key.k0, ns->key.k1}};
	memcpy(hd.magic, MAGIC, 8);
	hd.check = checksum(ns, copy);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	const char *parts[2] = {(const char *)&hd, (const char *)copy};
	size_t lens[2] = {sizeof(hd), n * sizeof(*copy)};
	for (int p = 0; p < 2; p++) {
		for (size_t off = 0; off < lens[p];) {
			ssize_t w = write(fd, parts[p] + off, lens[p] - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				goto out;
			off += (size_t)w;
		}
	}
	if (fsync(fd) != 0)
		goto out;
	if (close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto out;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(tmp);
	free(copy);
	return rc;
}

int bw_nseen_load(struct bw_nseen *ns, const char *path)
{
	size_t n = ns->nbuckets * SLOTS;
	struct header hd;
	int rc = BW_EMALFORMED;
	FILE *f = fopen(path, "rb");
	if (!f)
		return errno == ENOENT ? BW_ENOENT : BW_EIO;
	uint64_t *copy = malloc(n * sizeof(*copy));
	if (!copy) {
		fclose(f);
		return BW_ENOMEM;
	}
	if (fread(&hd, sizeof(hd), 1, f) != 1 || memcmp(hd.magic, MAGIC, 8) != 0 ||
	    hd.nbuckets != ns->nbuckets || fread(copy, sizeof(*copy), n, f) != n ||
	    fgetc(f) != EOF)
		goto out;
	uint64_t born = ns->born;
	ns->born = hd.born;
	if (checksum(ns, copy) != hd.check) {
		ns->born = born;
		goto out;
	}
	ns->key = (struct bw_hash_key){hd.key[0], hd.key[1]}; /* the slots were placed by it */
	for (size_t i = 0; i < n; i++)
		atomic_store_explicit(&ns->slot[i], copy[i], memory_order_relaxed);
	rc = 0;
out:
	free(copy);
	fclose(f);
	return rc;
}
