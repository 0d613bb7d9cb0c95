/*
 * feeds/http.c - one HTTP(S) GET with libcurl's easy interface: TLS verification on,
 * http/https only (redirects included, at most 5), gzip/deflate decoding, a cap on the
 * decoded body, conditional GET, an overall timeout. Runs on the feed manager's thread.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "feeds/feeds.h"

struct body {
	char *buf;
	size_t len, cap, max;
	bool over;
};

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
	struct body *b = ctx;
	size_t add = size * n;

	if (add > b->max - b->len) {
		b->over = true;
		return 0; /* aborts the transfer */
	}
	if (b->len + add + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		while (cap < b->len + add + 1)
			cap *= 2;
		char *nb = realloc(b->buf, cap);
		if (!nb)
			return 0;
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, p, add);
	b->len += add;
	b->buf[b->len] = 0;
	return add;
}

/* Copies a header's value (trimmed) into out when the line is "name: value". */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);

	if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
		return;
	const char *v = line + nl + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	size_t n = (size_t)(end - v);
	if (n >= outlen)
		return; /* too long to be a sane validator: ignore it */
	memcpy(out, v, n);
	out[n] = 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct bw_http_resp *r = ctx;
	size_t len = size * n;

	/* a new response (redirect, 100-continue) starts with a status line: forget the last */
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		r->etag[0] = r->last_modified[0] = r->date_added_last[0] = 0;
		return len;
	}
	header_value(p, len, "ETag", r->etag, sizeof(r->etag));
	header_value(p, len, "Last-Modified", r->last_modified, sizeof(r->last_modified));
	header_value(p, len, "X-TAXII-Date-Added-Last", r->date_added_last,
		     sizeof(r->date_added_last));
	return len;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const atomic_bool *cancel = ctx;
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return cancel && atomic_load(cancel) ? 1 : 0;
}

int bw_http_get(const struct bw_http_req *req, struct bw_http_resp *resp, char *err, size_t errlen)
{
	struct body b = {.max = req->max_size ? req->max_size : ((size_t)1 << 30)};
	struct curl_slist *hdrs = NULL;
	char line[512];
	int rc = BW_EIO;
	CURL *h;

	memset(resp, 0, sizeof(*resp));
	err[0] = 0;
	if (!(h = curl_easy_init())) {
		snprintf(err, errlen, "out of memory");
		return BW_ENOMEM;
	}
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* every encoding curl can decode */
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (req->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(req->timeout_ms < 10000 ? req->timeout_ms : 10000));
	/* the server's declared length is checked before the body comes; the decoded length
	 * in on_data() */
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)b.max);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "bulwark-feeds/1");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
	if (req->cancel) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)req->cancel);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	if (req->etag && *req->etag) {
		snprintf(line, sizeof(line), "If-None-Match: %s", req->etag);
		hdrs = curl_slist_append(hdrs, line);
	}
	if (req->last_modified && *req->last_modified) {
		snprintf(line, sizeof(line), "If-Modified-Since: %s", req->last_modified);
		hdrs = curl_slist_append(hdrs, line);
	}
	if (req->accept) {
		snprintf(line, sizeof(line), "Accept: %s", req->accept);
		hdrs = curl_slist_append(hdrs, line);
	}
	if (req->bearer) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", req->bearer);
		hdrs = curl_slist_append(hdrs, line);
	}
	if (hdrs)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (req->username) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, req->username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, req->password ? req->password : "");
	}

	CURLcode cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	char *eff = NULL;
	if (curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff)
		snprintf(resp->effective_url, sizeof(resp->effective_url), "%s", eff);
	if (b.over || cc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(err, errlen, "larger than max-size (%llu bytes)",
			 (unsigned long long)b.max);
		rc = BW_ERANGE;
		goto fail;
	}
	if (cc == CURLE_PARTIAL_FILE || cc == CURLE_BAD_CONTENT_ENCODING ||
	    cc == CURLE_RECV_ERROR) {
		snprintf(err, errlen, "transfer cut short or corrupt: %s", curl_easy_strerror(cc));
		rc = BW_EMALFORMED;
		goto fail;
	}
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "%s", curl_easy_strerror(cc));
		rc = cc == CURLE_OUT_OF_MEMORY ? BW_ENOMEM : BW_EIO;
		goto fail;
	}
	if (!b.buf && !(b.buf = calloc(1, 1))) {
		rc = BW_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	resp->body = b.buf;
	resp->len = b.len;
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return 0;
fail:
	free(b.buf);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return rc;
}
