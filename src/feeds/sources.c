/*
 * feeds/sources.c - the `url:` source (one conditional GET of a whole file, any format)
 * and the `taxii:` source (a TAXII 2.1 collection's objects endpoint polled with
 * added_after, paged with next/more, merged into the last good STIX bundle).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feeds/feeds.h"
#include "policy/policy.h"

#define TAXII_MAX_PAGES 1000
#define TAXII_ACCEPT "application/taxii+json;version=2.1"

/* The bearer token: the file's first line, trimmed. */
static int read_token(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot read token-file %.200s", path);
		return BW_EIO;
	}
	if (!fgets(out, (int)outlen, f))
		out[0] = 0;
	fclose(f);
	size_t n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
		out[--n] = 0;
	if (!n) {
		snprintf(err, errlen, "token-file %s is empty", path);
		return BW_EINVAL;
	}
	return 0;
}

static void base_req(const struct bw_feed_conf *fc, const struct bw_fetch *out,
		     struct bw_http_req *req, const char *token)
{
	memset(req, 0, sizeof(*req));
	req->cancel = out->cancel;
	req->ca_file = fc->ca_file;
	req->timeout_ms = fc->timeout_ms;
	req->max_size = fc->max_size;
	req->username = fc->username;
	req->password = fc->password;
	req->bearer = token && *token ? token : NULL;
}

static int url_fetch(const struct bw_feed_conf *fc, const char *last_good, struct bw_fetch *out)
{
	struct bw_http_req req;
	struct bw_http_resp resp;
	char token[4096] = "";
	int rc;

	if (fc->token_file &&
	    (rc = read_token(fc->token_file, token, sizeof(token), out->err, sizeof(out->err))))
		return rc;
	base_req(fc, out, &req, token);
	req.url = fc->url;
	bool have = access(last_good, R_OK) == 0;
	if (have) {
		req.etag = out->meta.etag;
		req.last_modified = out->meta.last_modified;
	}
	if ((rc = bw_http_get(&req, &resp, out->err, sizeof(out->err))))
		return rc;
	snprintf(out->meta.source, sizeof(out->meta.source), "%s", fc->url);
	if (resp.status == 304 && have) {
		out->kind = BW_FETCH_NONE;
		free(resp.body);
		return 0;
	}
	if (resp.status != 200) {
		snprintf(out->err, sizeof(out->err), "HTTP status %ld from %.200s", resp.status,
			 resp.effective_url[0] ? resp.effective_url : fc->url);
		free(resp.body);
		return BW_EIO;
	}
	out->kind = BW_FETCH_FULL;
	out->buf = resp.body;
	out->len = resp.len;
	memcpy(out->meta.etag, resp.etag, sizeof(resp.etag));
	memcpy(out->meta.last_modified, resp.last_modified, sizeof(resp.last_modified));
	return 0;
}

const struct bw_feed_src_ops bw_feed_src_url = {.kind = "url", .fetch = url_fetch};

/* Percent-encodes s (RFC 3986 unreserved characters stay) onto out. */
static void append_encoded(char *out, size_t outlen, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(out);

	for (; *s && n + 4 < outlen; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			out[n++] = (char)ch;
		} else {
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	out[n] = 0;
}

static int taxii_fetch(const struct bw_feed_conf *fc, const char *last_good, struct bw_fetch *out)
{
	struct bw_http_req req;
	struct bw_http_resp resp;
	char token[4096] = "", url[2048], next[512] = "", cursor[64];
	json_t *all = json_array();
	int rc = BW_ENOMEM;
	size_t total = 0;

	if (!all) {
		snprintf(out->err, sizeof(out->err), "out of memory");
		return BW_ENOMEM;
	}
	if (fc->token_file &&
	    (rc = read_token(fc->token_file, token, sizeof(token), out->err, sizeof(out->err))))
		goto fail;
	bool have = access(last_good, R_OK) == 0;
	/* without a last good copy, start from the beginning of the collection */
	snprintf(cursor, sizeof(cursor), "%s", have ? out->meta.cursor : "");
	size_t bl = strlen(fc->url);
	bool slash = bl && fc->url[bl - 1] == '/';
	snprintf(out->meta.source, sizeof(out->meta.source), "%s%scollections/%s/objects/", fc->url,
		 slash ? "" : "/", fc->taxii_collection);
	for (int page = 0;; page++) {
		bool more = false;
		json_t *objs = NULL;
		if (page == TAXII_MAX_PAGES) {
			snprintf(out->err, sizeof(out->err), "more than %d pages", TAXII_MAX_PAGES);
			rc = BW_ERANGE;
			goto fail;
		}
		snprintf(url, sizeof(url), "%s", out->meta.source);
		char sep = '?';
		if (cursor[0]) {
			snprintf(url + strlen(url), sizeof(url) - strlen(url), "%cadded_after=", sep);
			append_encoded(url, sizeof(url), cursor);
			sep = '&';
		}
		if (next[0]) {
			snprintf(url + strlen(url), sizeof(url) - strlen(url), "%cnext=", sep);
			append_encoded(url, sizeof(url), next);
		}
		if (total >= fc->max_size) {
			snprintf(out->err, sizeof(out->err), "pages larger than max-size (%llu "
				 "bytes) together", (unsigned long long)fc->max_size);
			rc = BW_ERANGE;
			goto fail;
		}
		base_req(fc, out, &req, token);
		req.url = url;
		req.accept = TAXII_ACCEPT;
		req.max_size = fc->max_size - total;
		if ((rc = bw_http_get(&req, &resp, out->err, sizeof(out->err))))
			goto fail;
		total += resp.len;
		if (resp.status != 200) {
			snprintf(out->err, sizeof(out->err), "HTTP status %ld from %.200s",
				 resp.status, url);
			free(resp.body);
			rc = BW_EIO;
			goto fail;
		}
		char perr[200];
		rc = bw_taxii_envelope_parse(resp.body, resp.len, &objs, &more, next, sizeof(next),
					     perr, sizeof(perr));
		free(resp.body);
		if (rc) {
			snprintf(out->err, sizeof(out->err), "page %d: %.200s", page + 1, perr);
			goto fail;
		}
		rc = json_array_extend(all, objs) == 0 ? 0 : BW_ENOMEM;
		json_decref(objs);
		if (rc)
			goto fail;
		if (resp.date_added_last[0])
			memcpy(out->meta.cursor, resp.date_added_last, sizeof(resp.date_added_last));
		if (!more)
			break;
		/* a server that pages by date only: go on after the last object seen */
		if (!next[0]) {
			if (!resp.date_added_last[0] || !strcmp(cursor, resp.date_added_last)) {
				snprintf(out->err, sizeof(out->err), "page %d says more but gives "
					 "neither next nor X-TAXII-Date-Added-Last", page + 1);
				rc = BW_EMALFORMED;
				goto fail;
			}
			memcpy(cursor, resp.date_added_last, sizeof(cursor));
		}
	}
	if (!json_array_size(all) && have) {
		out->kind = BW_FETCH_NONE;
		json_decref(all);
		return 0;
	}
	char *old = NULL;
	size_t oldlen = 0;
	if (have && bw_feed_read_file(last_good, &old, &oldlen, NULL, NULL) != 0) {
		snprintf(out->err, sizeof(out->err), "cannot read the last good copy %.200s",
			 last_good);
		rc = BW_EIO;
		goto fail;
	}
	out->buf = bw_taxii_merge(old, oldlen, all, &out->len);
	free(old);
	if (!out->buf) {
		snprintf(out->err, sizeof(out->err), "cannot merge the new objects into %.200s",
			 last_good);
		rc = BW_EMALFORMED;
		goto fail;
	}
	out->kind = BW_FETCH_FULL;
	json_decref(all);
	return 0;
fail:
	json_decref(all);
	return rc;
}

const struct bw_feed_src_ops bw_feed_src_taxii = {.kind = "taxii", .fetch = taxii_fetch};
