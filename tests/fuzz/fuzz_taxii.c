/*
 * tests/fuzz/fuzz_taxii.c - the TAXII 2.1 envelope parser and the bundle merge on
 * arbitrary bytes (what a TAXII server sends is untrusted).
 *
 * Properties: a parse either fails with BW_EMALFORMED and no objects, or gives an array of
 * objects that each have a string id and type, `next` NUL-terminated within its buffer;
 * merging the objects into a bundle gives a bundle (valid JSON, type "bundle") that holds
 * every id exactly once, and merging the same objects again changes nothing.
 */
#include <string.h>

#include "feeds/feeds.h"
#include "fuzz.h"

static const char base[] = "{\"type\":\"bundle\",\"id\":\"bundle--1\",\"objects\":["
			   "{\"type\":\"indicator\",\"id\":\"indicator--a\",\"modified\":"
			   "\"2026-01-01T00:00:00Z\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *objs = (json_t *)1;
	bool more = true;
	char next[64], err[200];
	memset(next, 'x', sizeof(next));
	int rc = bw_taxii_envelope_parse((const char *)data, size, &objs, &more, next,
					 sizeof(next), err, sizeof(err));
	if (rc) {
		CHECK(rc == BW_EMALFORMED || rc == BW_ENOMEM);
		CHECK(objs == NULL);
		CHECK(!more);
		CHECK(memchr(err, 0, sizeof(err)) != NULL);
		return 0;
	}
	CHECK(json_is_array(objs));
	CHECK(memchr(next, 0, sizeof(next)) != NULL);
	size_t i;
	json_t *o;
	json_array_foreach(objs, i, o)
	{
		CHECK(json_is_object(o));
		CHECK(json_is_string(json_object_get(o, "id")));
		CHECK(json_is_string(json_object_get(o, "type")));
	}
	size_t len = 0, len2 = 0;
	char *b = bw_taxii_merge(base, sizeof(base) - 1, objs, &len);
	if (b) {
		json_error_t jerr;
		json_t *bundle = json_loadb(b, len, JSON_ALLOW_NUL, &jerr);
		CHECK(bundle != NULL);
		CHECK(!strcmp(json_string_value(json_object_get(bundle, "type")), "bundle"));
		json_t *seen = json_object();
		json_array_foreach(json_object_get(bundle, "objects"), i, o)
		{
			const char *id = json_string_value(json_object_get(o, "id"));
			CHECK(id != NULL);
			/* ids with NUL bytes compare on their first part only in jansson's keys */
			if (strlen(id) == json_string_length(json_object_get(o, "id"))) {
				CHECK(json_object_get(seen, id) == NULL);
				json_object_set_new(seen, id, json_true());
			}
		}
		json_decref(seen);
		json_decref(bundle);
		char *b2 = bw_taxii_merge(b, len, objs, &len2);
		CHECK(b2 != NULL);
		CHECK(len2 == len && !memcmp(b, b2, len));
		free(b2);
		free(b);
	}
	json_decref(objs);
	return 0;
}
