/*
 * telemetry/search.c - searching the query log (GET /api/v1/querylog; docs/api.md): a
 * read-only SQLite connection of its own per search, so the writer (the query log thread)
 * is never blocked (WAL: readers and the writer do not wait on each other).
 *
 * The SQL is made of fixed fragments, one per filter present, whose values are bound as
 * parameters: nothing the caller sends becomes SQL text. A search is bounded three ways:
 * at most BW_TLM_SEARCH_MAX rows, an offset of at most BW_TLM_SEARCH_MAX_OFFSET, and
 * SEARCH_MS of work (a progress handler interrupts it), so a broad search cannot hold the
 * admin thread.
 *
 * What comes back is what the privacy mode in force keeps, whatever an earlier run with
 * another mode wrote into the same file: under blocked-only only blocked (and log-only)
 * rows, outside `full` client addresses cut to their network, client names only under
 * blocked-only and full (docs/privacy.md).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "telemetry/internal.h"

#define SEARCH_MS 2000	      /* work per search, at most */
#define BUSY_MS 200	      /* waiting for a lock (a checkpoint), at most */
#define PROGRESS_STEPS 1000   /* VM steps between looks at the clock */

static const char select_sql[] =
    "SELECT time, client, client_name, profile, transport, name, type, rcode, verdict, "
    "action, feed, category, rule, latency_us, cache_hit FROM queries WHERE 1";

const char *bw_tlm_name_sql(enum bw_tlm_name_kind kind)
{
	switch (kind) {
	case BW_TLM_NAME_EXACT:
		return " AND name = :name";
	case BW_TLM_NAME_SUFFIX: /* the name itself and every name under it */
		return " AND (name = :name OR substr(name, -(length(:name) + 1)) = '.' || :name)";
	case BW_TLM_NAME_PREFIX:
		return " AND substr(name, 1, length(:name)) = :name";
	default:
		return "";
	}
}

int bw_tlm_name_pattern(const char *in, struct bw_tlm_name_pattern *out)
{
	memset(out, 0, sizeof(*out));
	if (!in || !*in || !strcmp(in, "*"))
		return 0; /* BW_TLM_NAME_ANY */
	const char *v = in;
	size_t n = strlen(in);
	out->kind = BW_TLM_NAME_EXACT;
	if (!strncmp(v, "*.", 2) || v[0] == '.') {
		out->kind = BW_TLM_NAME_SUFFIX;
		v += v[0] == '.' ? 1 : 2;
		n = strlen(v);
	} else if (in[n - 1] == '*') {
		out->kind = BW_TLM_NAME_PREFIX;
		n--;
	}
	if (n && v[n - 1] == '.' && out->kind != BW_TLM_NAME_PREFIX)
		n--; /* "example.org." as "example.org", as the log writes it */
	if (!n || n >= sizeof(out->value))
		return BW_EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch <= ' ' || ch == 0x7f || ch == '*')
			return BW_EINVAL;
		out->value[i] = (char)tolower(ch);
	}
	out->value[n] = 0;
	return 0;
}

int bw_tlm_parse_time(const char *s, int64_t *ms)
{
	char *end;
	if (!s || !*s)
		return BW_EINVAL;
	if (strspn(s, "0123456789") == strlen(s)) { /* unix seconds */
		long long v = strtoll(s, &end, 10);
		if (v < 0 || v > 253402300799LL) /* 9999-12-31 */
			return BW_EINVAL;
		*ms = (int64_t)v * 1000;
		return 0;
	}
	struct tm tm = {0};
	const char *p = strptime(s, "%Y-%m-%d", &tm);
	if (!p)
		return BW_EINVAL;
	if (*p == 'T' || *p == ' ') {
		const char *q = strptime(p + 1, "%H:%M:%S", &tm);
		if (!q && !(q = strptime(p + 1, "%H:%M", &tm)))
			return BW_EINVAL;
		p = q;
	}
	int64_t frac = 0;
	if (*p == '.') {
		int digits = 0;
		for (p++; isdigit((unsigned char)*p); p++, digits++)
			if (digits < 3)
				frac = frac * 10 + (*p - '0');
		for (; digits < 3; digits++)
			frac *= 10;
	}
	long off = 0; /* seconds east of UTC */
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int h, m = 0, n = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &h, &m, &n) != 2 &&
		    sscanf(p + 1, "%2d%2d%n", &h, &m, &n) != 2)
			return BW_EINVAL;
		off = (*p == '-' ? -1 : 1) * (h * 3600L + m * 60L);
		p += 1 + n;
	}
	if (*p)
		return BW_EINVAL;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return BW_EINVAL;
	*ms = ((int64_t)t - off) * 1000 + frac;
	return 0;
}

/* The client as the privacy mode keeps it: an address is cut to its network outside
 * `full` ("192.0.2.0/24"); anything else (a network, a client's name) as it is. */
static void client_as_kept(const char *in, enum bw_privacy privacy, char *out, size_t cap)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, in, &s4->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, in, &s6->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	if (!ss.ss_family) {
		snprintf(out, cap, "%s", in);
		return;
	}
	struct bw_tlm_record rec;
	bw_tlm_set_client(&rec, (const struct sockaddr *)&ss, privacy);
	bw_tlm_client_text(&rec, out, cap);
}

static int on_progress(void *arg)
{
	return bw_now_ms() > *(const uint64_t *)arg; /* non-zero: interrupt */
}

/* The statement's SQL for q under privacy into sql. */
static void build_sql(const struct bw_tlm_search *q, enum bw_privacy privacy, char *sql,
		      size_t cap)
{
	size_t n = (size_t)snprintf(sql, cap, "%s", select_sql);
#define ADD(frag) (n += (size_t)snprintf(sql + n, n < cap ? cap - n : 0, "%s", (frag)))
	if (privacy == BW_PRIVACY_BLOCKED_ONLY)
		ADD(" AND verdict IN ('blocked', 'log-only')");
	if (q->client)
		ADD(bw_tlm_keeps_names(privacy) ? " AND (client = :client OR client_name = :client)"
						: " AND client = :client");
	ADD(bw_tlm_name_sql(q->name.kind));
	if (q->verdict == BW_TLM_VERDICT_BLOCKED)
		ADD(" AND verdict = 'blocked'");
	else if (q->verdict == BW_TLM_VERDICT_ALLOWED)
		ADD(" AND verdict <> 'blocked'");
	if (q->feed)
		ADD(" AND feed = :feed");
	if (q->since_ms >= 0)
		ADD(" AND time >= :since");
	if (q->until_ms >= 0)
		ADD(" AND time < :until");
	ADD(" ORDER BY id DESC LIMIT :limit OFFSET :offset");
#undef ADD
}

static void bind_text(sqlite3_stmt *st, const char *param, const char *v)
{
	int i = sqlite3_bind_parameter_index(st, param);
	if (i > 0)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

static void bind_int(sqlite3_stmt *st, const char *param, int64_t v)
{
	int i = sqlite3_bind_parameter_index(st, param);
	if (i > 0)
		sqlite3_bind_int64(st, i, v);
}

static void bind_all(sqlite3_stmt *st, const struct bw_tlm_search *q, enum bw_privacy privacy)
{
	char client[128];
	if (q->client) {
		client_as_kept(q->client, privacy, client, sizeof(client));
		bind_text(st, ":client", client);
	}
	if (q->name.kind != BW_TLM_NAME_ANY)
		bind_text(st, ":name", q->name.value);
	if (q->feed)
		bind_text(st, ":feed", q->feed);
	bind_int(st, ":since", q->since_ms);
	bind_int(st, ":until", q->until_ms);
	bind_int(st, ":limit", (int64_t)q->limit + 1); /* one more: is there more? */
	bind_int(st, ":offset", q->offset);
}

static void put_text(json_t *row, const char *key, sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);
	if (v)
		json_object_set_new(row, key, json_string((const char *)v));
}

/* One result row, with what the mode keeps and nothing more. */
static json_t *make_row(sqlite3_stmt *st, enum bw_privacy privacy)
{
	static const char *const text_cols[] = {NULL, NULL, NULL, "profile", "transport", "name",
						"type", "rcode", "verdict", "action", "feed",
						"category", "rule"};
	char when[40], client[128];
	bw_tlm_iso_time((uint64_t)sqlite3_column_int64(st, 0), when, sizeof(when));
	const unsigned char *c = sqlite3_column_text(st, 1);
	client_as_kept(c ? (const char *)c : "unknown", privacy, client, sizeof(client));
	json_t *row = json_pack("{s:s, s:s, s:I, s:b}", "time", when, "client", client,
				"latency_us", (json_int_t)sqlite3_column_int64(st, 13), "cache_hit",
				sqlite3_column_int(st, 14));
	if (!row)
		return NULL;
	if (bw_tlm_keeps_names(privacy))
		put_text(row, "client_name", st, 2);
	for (int i = 3; i < (int)BW_ARRAY_LEN(text_cols); i++)
		put_text(row, text_cols[i], st, i);
	return row;
}

/* Runs the statement: the rows (at most q->limit) into rows, *more when there are others. */
static int run(sqlite3 *db, const struct bw_tlm_search *q, enum bw_privacy privacy,
	       json_t *rows, bool *more, char *err, size_t errlen)
{
	char sql[1024];
	sqlite3_stmt *st = NULL;
	build_sql(q, privacy, sql, sizeof(sql));
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		bind_all(st, q, privacy);
		unsigned n = 0;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (n++ == q->limit) {
				*more = true;
				continue;
			}
			json_t *row = make_row(st, privacy);
			if (!row || json_array_append_new(rows, row)) {
				rc = SQLITE_NOMEM;
				break;
			}
		}
	}
	if (rc == SQLITE_INTERRUPT)
		snprintf(err, errlen, "the search took longer than %d ms: narrow it (a name, a "
			 "client, a time range)", SEARCH_MS);
	else if (rc != SQLITE_DONE)
		snprintf(err, errlen, "query log: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : rc == SQLITE_INTERRUPT ? BW_ERANGE : BW_EIO;
}

int bw_tlm_search(const char *path, enum bw_privacy privacy, const struct bw_tlm_search *q,
		  json_t *rows, bool *more, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	*more = false;
	if (q->limit > BW_TLM_SEARCH_MAX || q->offset > BW_TLM_SEARCH_MAX_OFFSET) {
		snprintf(err, errlen, "limit or offset out of range");
		return BW_EINVAL;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "query log %s: %s", path,
			 db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return BW_EIO;
	}
	sqlite3_busy_timeout(db, BUSY_MS);
	uint64_t deadline = bw_now_ms() + SEARCH_MS;
	sqlite3_progress_handler(db, PROGRESS_STEPS, on_progress, &deadline);
	int rc = run(db, q, privacy, rows, more, err, errlen);
	sqlite3_close(db);
	return rc;
}
