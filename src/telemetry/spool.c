/*
 * telemetry/spool.c - the query log's spool: records on their way to SQLite, in segment
 * files next to the log. The telemetry thread appends (cheap: a memcpy, and one write()
 * per drain); the query log thread reads them back and inserts the rows at its own pace
 * (internal.h). A burst that SQLite cannot take at once waits here instead of being
 * dropped; what the spool cannot take (size cap reached, disk full) is dropped and counted.
 *
 * Layout: DIR/<16 hex digits>.seg, numbered in the order written. A segment starts with
 * the 8 bytes "bwspool1"; then records, each a 2-byte length and that many bytes (the
 * fields of struct bw_tlm_record in this machine's byte order, strings without their
 * padding; encode() and bw_tlm_spool_decode() below). The client's name comes last and only
 * when there is one, so the records of an earlier version (which had none) read as they
 * are. The writer keeps one segment open
 * and starts the next one past SEG_MAX bytes or SEG_AGE_MS of age; at start it always
 * starts a new one, so every older segment is complete (a crash may leave a cut record at
 * its end, which is skipped). Segments the reader has finished and whose rows are
 * committed are deleted (bw_tlm_spool_consumed).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "telemetry/internal.h"

#define MAGIC "bwspool1"
#define MAGIC_LEN 8
#define SEG_MAX (8u << 20)     /* bytes per segment before the next one starts */
#define SEG_AGE_MS (60 * 1000) /* ... or after this long: imported records do not linger */
#define WBUF (64u << 10)       /* the writer's buffer: one write() per drain or per 64 KiB */
#define RBUF (128u << 10)      /* the reader's: holds many records, always a whole one */
#define FIXED 40	       /* the fixed part of a record (encode) */
#define REC_MAX (BW_TLM_REC_MAX - 2) /* a record without its length */

struct bw_tlm_spool {
	char *dir;
	uint64_t max_bytes;

	/* writer (telemetry thread) */
	int wfd;
	uint64_t wseg;	    /* the open segment, 0: none */
	uint64_t wsize;	    /* its size */
	uint64_t wopened;   /* when it was started (bw_now_ms) */
	uint64_t wbuf_recs; /* records in wbuf */
	size_t wlen;
	unsigned char *wbuf;
	bool wfailing;	/* writes fail: said once */
	bool wfull;	/* at max_bytes: said once */
	uint64_t wdisk; /* `disk` as of the last flush: the size cap without a lock per record */

	/* shared, under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t next_seg;  /* the number the next segment gets */
	uint64_t live_seg;  /* = wseg, for the reader: 0 none */
	uint64_t live_size; /* bytes of it the reader may read */
	uint64_t disk;	    /* bytes in segment files */
	bool closing;

	/* reader (query log thread) */
	int rfd;
	uint64_t rseg, roff; /* where the next read starts */
	unsigned char *rbuf;

	uint64_t first_new; /* segments from this number on were written since open */
	_Atomic uint64_t spooled, drops, skipped_bytes, read_new, read_old;
};

static void seg_path(const struct bw_tlm_spool *s, uint64_t seg, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%016" PRIx64 ".seg", s->dir, seg);
}

static bool seg_name(const char *name, uint64_t *seg)
{
	char *end;
	if (strlen(name) != 20 || strcmp(name + 16, ".seg") != 0)
		return false;
	errno = 0;
	unsigned long long v = strtoull(name, &end, 16);
	if (errno || end != name + 16 || v == 0)
		return false;
	*seg = v;
	return true;
}

/* The lowest and highest segment numbers in the directory, and their total size. */
static int scan(struct bw_tlm_spool *s, uint64_t *lo, uint64_t *hi, uint64_t *bytes)
{
	DIR *d = opendir(s->dir);
	if (!d)
		return -1;
	*lo = *hi = *bytes = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		uint64_t n;
		struct stat st;
		if (!seg_name(e->d_name, &n) || fstatat(dirfd(d), e->d_name, &st, 0) != 0)
			continue;
		if (!*lo || n < *lo)
			*lo = n;
		if (n > *hi)
			*hi = n;
		*bytes += (uint64_t)st.st_size;
	}
	closedir(d);
	return 0;
}

struct bw_tlm_spool *bw_tlm_spool_open(const char *dir, uint64_t max_bytes, char *err,
				       size_t errlen)
{
	struct bw_tlm_spool *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->wfd = s->rfd = -1;
	s->max_bytes = max_bytes;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (!(s->dir = strdup(dir)) || !(s->wbuf = malloc(WBUF)) || !(s->rbuf = malloc(RBUF))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	uint64_t lo, hi;
	if ((mkdir(dir, 0700) != 0 && errno != EEXIST) || scan(s, &lo, &hi, &s->disk) != 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	s->next_seg = hi + 1; /* older segments are complete: never appended to again */
	s->first_new = s->next_seg;
	s->wdisk = s->disk;
	s->rseg = lo ? lo : s->next_seg;
	return s;
fail:
	bw_tlm_spool_close(s);
	return NULL;
}

void bw_tlm_spool_close(struct bw_tlm_spool *s)
{
	if (!s)
		return;
	if (s->wfd >= 0)
		close(s->wfd);
	if (s->rfd >= 0)
		close(s->rfd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s->dir);
	free(s->wbuf);
	free(s->rbuf);
	free(s);
}

/* ---- the record format ---- */

static void put(unsigned char **p, const void *v, size_t n)
{
	memcpy(*p, v, n);
	*p += n;
}

static void put_str(unsigned char **p, const char *v, size_t cap, bool wide)
{
	size_t n = strnlen(v, cap - 1);
	if (wide) {
		uint16_t n16 = (uint16_t)n;
		put(p, &n16, 2);
	} else {
		uint8_t n8 = (uint8_t)n;
		put(p, &n8, 1);
	}
	put(p, v, n);
}

size_t bw_tlm_record_encode(const struct bw_tlm_record *rec, unsigned char *out)
{
	unsigned char *p = out + 2;
	put(&p, &rec->time_ms, 8);
	put(&p, &rec->latency_us, 4);
	put(&p, &rec->qtype, 2);
	put(&p, &rec->rcode, 1);
	put(&p, &rec->transport, 1);
	put(&p, &rec->family, 1);
	put(&p, &rec->prefix, 1);
	put(&p, &rec->qname_len, 1);
	put(&p, &rec->worker, 1);
	put(&p, rec->addr, 16);
	put(&p, &rec->v.flags, 1);
	put(&p, &rec->v.action, 1);
	put(&p, &rec->v.trigger, 1);
	put(&p, &rec->v.feed, 1);
	put_str(&p, rec->profile, sizeof(rec->profile), false);
	put(&p, rec->qname, rec->qname_len);
	if (rec->v.flags & BW_TLM_MATCHED) {
		put_str(&p, rec->v.feed_name, sizeof(rec->v.feed_name), false);
		put_str(&p, rec->v.category, sizeof(rec->v.category), false);
		put_str(&p, rec->v.rule, sizeof(rec->v.rule), true);
	}
	if (rec->client_name[0])
		put_str(&p, rec->client_name, sizeof(rec->client_name), false);
	uint16_t len = (uint16_t)(p - out - 2);
	memcpy(out, &len, 2);
	return (size_t)(p - out);
}

static bool get(const unsigned char **p, const unsigned char *end, void *v, size_t n)
{
	if ((size_t)(end - *p) < n)
		return false;
	memcpy(v, *p, n);
	*p += n;
	return true;
}

static bool get_str(const unsigned char **p, const unsigned char *end, char *v, size_t cap,
		    bool wide)
{
	size_t n;
	if (wide) {
		uint16_t n16;
		if (!get(p, end, &n16, 2))
			return false;
		n = n16;
	} else {
		uint8_t n8;
		if (!get(p, end, &n8, 1))
			return false;
		n = n8;
	}
	if (n >= cap || !get(p, end, v, n))
		return false;
	v[n] = 0;
	return memchr(v, 0, n) == NULL;
}

long bw_tlm_spool_decode(const unsigned char *buf, size_t n, struct bw_tlm_record *rec)
{
	uint16_t len;
	if (n < 2)
		return 0;
	memcpy(&len, buf, 2);
	if (len < FIXED || len > REC_MAX)
		return -1;
	if (n < 2u + len)
		return 0;
	const unsigned char *p = buf + 2, *end = p + len;
	memset(rec, 0, sizeof(*rec));
	get(&p, end, &rec->time_ms, 8);
	get(&p, end, &rec->latency_us, 4);
	get(&p, end, &rec->qtype, 2);
	get(&p, end, &rec->rcode, 1);
	get(&p, end, &rec->transport, 1);
	get(&p, end, &rec->family, 1);
	get(&p, end, &rec->prefix, 1);
	get(&p, end, &rec->qname_len, 1);
	get(&p, end, &rec->worker, 1);
	get(&p, end, rec->addr, 16);
	get(&p, end, &rec->v.flags, 1);
	get(&p, end, &rec->v.action, 1);
	get(&p, end, &rec->v.trigger, 1);
	get(&p, end, &rec->v.feed, 1);
	if (!get_str(&p, end, rec->profile, sizeof(rec->profile), false) ||
	    !get(&p, end, rec->qname, rec->qname_len))
		return -1;
	if ((rec->v.flags & BW_TLM_MATCHED) &&
	    (!get_str(&p, end, rec->v.feed_name, sizeof(rec->v.feed_name), false) ||
	     !get_str(&p, end, rec->v.category, sizeof(rec->v.category), false) ||
	     !get_str(&p, end, rec->v.rule, sizeof(rec->v.rule), true)))
		return -1;
	if (p != end && (!get_str(&p, end, rec->client_name, sizeof(rec->client_name), false) ||
			 !rec->client_name[0]))
		return -1; /* a name is there only when there is one */
	if (p != end)
		return -1;
	return 2 + (long)len;
}

/* ---- writer ---- */

static void publish(struct bw_tlm_spool *s, uint64_t disk_add)
{
	pthread_mutex_lock(&s->lock);
	s->live_seg = s->wseg;
	s->live_size = s->wsize;
	s->disk += disk_add;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void close_segment(struct bw_tlm_spool *s)
{
	if (s->wfd < 0)
		return;
	close(s->wfd);
	s->wfd = -1;
	s->wseg = 0;
	s->wsize = 0;
	publish(s, 0);
}

/* The reader is shown the new segment's number only once the file exists with its magic,
 * and as the live one in the same step: it takes a segment below next_seg that is not the
 * live one as complete (and skips it when it cannot open it), so showing the number
 * earlier could make it skip, and then delete, a segment being started. */
static bool open_segment(struct bw_tlm_spool *s)
{
	char path[4096];
	pthread_mutex_lock(&s->lock);
	uint64_t n = s->next_seg; /* only this thread makes segments */
	pthread_mutex_unlock(&s->lock);
	seg_path(s, n, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	if (write(fd, MAGIC, MAGIC_LEN) != MAGIC_LEN) {
		close(fd);
		unlink(path);
		return false;
	}
	s->wfd = fd;
	s->wseg = n;
	s->wsize = MAGIC_LEN;
	s->wopened = bw_now_ms();
	pthread_mutex_lock(&s->lock); /* publish(), with the number */
	s->next_seg = n + 1;
	s->live_seg = n;
	s->live_size = MAGIC_LEN;
	s->disk += MAGIC_LEN;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return true;
}

static void write_failed(struct bw_tlm_spool *s, uint64_t recs, const char *why)
{
	atomic_fetch_add_explicit(&s->drops, recs, memory_order_relaxed);
	if (!s->wfailing)
		bw_warn("telemetry: query log spool %s: %s (records are dropped until it "
			"recovers)",
			s->dir, why);
	s->wfailing = true;
}

/* The records that lie whole in the first n bytes of an encoded buffer. */
static uint64_t whole_records(const unsigned char *buf, size_t n)
{
	uint64_t recs = 0;
	size_t off = 0;
	while (n - off >= 2) {
		uint16_t len;
		memcpy(&len, buf + off, 2);
		if (n - off - 2 < len)
			break;
		off += 2 + (size_t)len;
		recs++;
	}
	return recs;
}

void bw_tlm_spool_flush(struct bw_tlm_spool *s)
{
	uint64_t now = bw_now_ms();
	pthread_mutex_lock(&s->lock);
	s->wdisk = s->disk; /* what the reader deleted since counts again */
	pthread_mutex_unlock(&s->lock);
	if (!s->wlen) {
		if (s->wfd >= 0 && now - s->wopened >= SEG_AGE_MS)
			close_segment(s); /* idle: let the reader finish and delete it */
		return;
	}
	uint64_t recs = s->wbuf_recs;
	size_t len = s->wlen;
	s->wlen = 0;
	s->wbuf_recs = 0;
	if (s->wfd >= 0 && (s->wsize + len > SEG_MAX || now - s->wopened >= SEG_AGE_MS))
		close_segment(s);
	if (s->wfd < 0 && !open_segment(s)) {
		write_failed(s, recs, strerror(errno));
		return;
	}
	ssize_t w = write(s->wfd, s->wbuf, len);
	if (w != (ssize_t)len) {
		/* a short write leaves a cut record: no more appends to this segment. The
		 * records written whole before the cut are read back and become rows: only the
		 * others are dropped (counting them all counted those twice). */
		const char *why = w < 0 ? strerror(errno) : "short write (disk full?)";
		uint64_t whole = w > 0 ? whole_records(s->wbuf, (size_t)w) : 0;
		atomic_fetch_add_explicit(&s->spooled, whole, memory_order_relaxed);
		write_failed(s, recs - whole, why);
		pthread_mutex_lock(&s->lock);
		s->disk += w > 0 ? (uint64_t)w : 0;
		pthread_mutex_unlock(&s->lock);
		close_segment(s);
		return;
	}
	s->wsize += len;
	atomic_fetch_add_explicit(&s->spooled, recs, memory_order_relaxed);
	if (s->wfailing)
		bw_info("telemetry: query log spool %s writes again", s->dir);
	s->wfailing = false;
	publish(s, len);
}

void bw_tlm_spool_end(struct bw_tlm_spool *s)
{
	bw_tlm_spool_flush(s);
	close_segment(s);
}

bool bw_tlm_spool_put(struct bw_tlm_spool *s, const struct bw_tlm_record *rec)
{
	if (s->wlen + REC_MAX + 2 > WBUF)
		bw_tlm_spool_flush(s);
	if (s->wdisk + s->wlen >= s->max_bytes) {
		atomic_fetch_add_explicit(&s->drops, 1, memory_order_relaxed);
		if (!s->wfull)
			bw_warn(
			    "telemetry: query log spool %s is full (telemetry.spool.size: %" PRIu64
			    " bytes): records are dropped until the query log catches up",
			    s->dir, s->max_bytes);
		s->wfull = true;
		return false;
	}
	if (s->wfull)
		bw_info("telemetry: query log spool %s has room again", s->dir);
	s->wfull = false;
	s->wlen += bw_tlm_record_encode(rec, s->wbuf + s->wlen);
	s->wbuf_recs++;
	return true;
}

/* ---- reader ---- */

/* Opens segment rseg for reading, or the next one that exists; false: nothing to read. */
static bool reader_open(struct bw_tlm_spool *s, uint64_t next_seg)
{
	char path[4096];
	while (s->rfd < 0 && s->rseg < next_seg) {
		seg_path(s, s->rseg, path, sizeof(path));
		s->rfd = open(path, O_RDONLY | O_CLOEXEC);
		if (s->rfd >= 0)
			break;
		s->rseg++;
		s->roff = 0;
	}
	return s->rfd >= 0;
}

size_t bw_tlm_spool_read(struct bw_tlm_spool *s, struct bw_tlm_record *out, size_t max,
			 struct bw_tlm_spool_pos *pos)
{
	size_t n = 0;
	while (n < max) {
		pthread_mutex_lock(&s->lock);
		uint64_t live = s->live_seg, live_size = s->live_size, next = s->next_seg;
		pthread_mutex_unlock(&s->lock);
		if (!reader_open(s, next))
			break;
		uint64_t limit;
		bool closed = s->rseg != live;
		if (closed) {
			struct stat st;
			limit = fstat(s->rfd, &st) == 0 ? (uint64_t)st.st_size : 0;
		} else {
			limit = live_size;
		}
		if (s->roff == 0 && limit >= MAGIC_LEN) {
			char m[MAGIC_LEN];
			if (pread(s->rfd, m, MAGIC_LEN, 0) != MAGIC_LEN ||
			    memcmp(m, MAGIC, MAGIC_LEN)) {
				bw_warn("telemetry: query log spool %s: segment %" PRIu64
					" is not a spool segment; skipped",
					s->dir, s->rseg);
				s->roff = limit;
			} else {
				s->roff = MAGIC_LEN;
			}
		}
		if (s->roff >= limit) {
			if (!closed)
				break; /* caught up with the writer */
			close(s->rfd);
			s->rfd = -1;
			s->rseg++;
			s->roff = 0;
			continue;
		}
		size_t want = (size_t)BW_MIN((uint64_t)RBUF, limit - s->roff);
		ssize_t got = pread(s->rfd, s->rbuf, want, (off_t)s->roff);
		if (got <= 0) {
			bw_warn("telemetry: query log spool %s: segment %" PRIu64 ": %s; skipped",
				s->dir, s->rseg, got < 0 ? strerror(errno) : "cut short");
			atomic_fetch_add_explicit(&s->skipped_bytes, limit - s->roff,
						  memory_order_relaxed);
			s->roff = limit;
			continue;
		}
		size_t at = 0;
		while (n < max && at < (size_t)got) {
			long k = bw_tlm_spool_decode(s->rbuf + at, (size_t)got - at, &out[n]);
			if (k == 0 && (uint64_t)(got - (ssize_t)at) < limit - s->roff - at)
				break; /* the record goes on past this read: read again from it */
			if (k == 0 && !closed)
				break; /* not whole yet (the writer writes whole records) */
			if (k <= 0) {
				/* garbage, or a record cut at a segment's end by a crash: the rest
				 * of this segment cannot be read */
				uint64_t rest = limit - s->roff - at;
				bw_warn("telemetry: query log spool %s: segment %" PRIu64
					": %s at byte %" PRIu64 "; the rest (%" PRIu64
					" bytes) skipped",
					s->dir, s->rseg, k < 0 ? "damaged record" : "cut record",
					s->roff + at, rest);
				atomic_fetch_add_explicit(&s->skipped_bytes, rest,
							  memory_order_relaxed);
				at += (size_t)rest;
				break;
			}
			at += (size_t)k;
			n++;
			atomic_fetch_add_explicit(s->rseg >= s->first_new ? &s->read_new
									  : &s->read_old,
						  1, memory_order_relaxed);
		}
		s->roff += at;
		if (at == 0)
			break; /* the live segment's last record is not whole yet */
	}
	pos->seg = s->rseg;
	pos->off = s->roff;
	return n;
}

void bw_tlm_spool_seek(struct bw_tlm_spool *s, struct bw_tlm_spool_pos pos)
{
	pthread_mutex_lock(&s->lock);
	uint64_t next = s->next_seg;
	pthread_mutex_unlock(&s->lock);
	if (!pos.seg || pos.seg >= next)
		return; /* no position, or one from segments that are gone: from the start */
	if (s->rfd >= 0)
		close(s->rfd);
	s->rfd = -1;
	s->rseg = pos.seg;
	s->roff = pos.off;
}

void bw_tlm_spool_consumed(struct bw_tlm_spool *s, struct bw_tlm_spool_pos pos)
{
	char path[4096];
	DIR *d = opendir(s->dir);
	if (!d)
		return;
	uint64_t freed = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		uint64_t n;
		struct stat st;
		if (!seg_name(e->d_name, &n) || n >= pos.seg)
			continue;
		snprintf(path, sizeof(path), "%s/%s", s->dir, e->d_name);
		if (stat(path, &st) == 0 && unlink(path) == 0)
			freed += (uint64_t)st.st_size;
	}
	closedir(d);
	pthread_mutex_lock(&s->lock);
	s->disk -= BW_MIN(s->disk, freed);
	pthread_mutex_unlock(&s->lock);
}

void bw_tlm_spool_wait(struct bw_tlm_spool *s, unsigned ms)
{
	struct timespec ts;
	bw_deadline_ms(&ts, ms);
	pthread_mutex_lock(&s->lock);
	bool more = s->rseg < s->next_seg && (s->rseg != s->live_seg || s->live_size > s->roff);
	if (!more && !s->closing)
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	pthread_mutex_unlock(&s->lock);
}

void bw_tlm_spool_stop_waits(struct bw_tlm_spool *s)
{
	pthread_mutex_lock(&s->lock);
	s->closing = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void bw_tlm_spool_stats(struct bw_tlm_spool *s, struct bw_tlm_spool_stats *out)
{
	pthread_mutex_lock(&s->lock);
	out->bytes = s->disk;
	pthread_mutex_unlock(&s->lock);
	out->spooled = atomic_load_explicit(&s->spooled, memory_order_relaxed);
	out->drops = atomic_load_explicit(&s->drops, memory_order_relaxed);
	out->skipped_bytes = atomic_load_explicit(&s->skipped_bytes, memory_order_relaxed);
	out->read_new = atomic_load_explicit(&s->read_new, memory_order_relaxed);
	out->read_old = atomic_load_explicit(&s->read_old, memory_order_relaxed);
}
