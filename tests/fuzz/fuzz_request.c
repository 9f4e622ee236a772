/* SPDX-License-Identifier: MIT */
/* Fuzz target: bytes from a client, as the gateway reads them. The first
 * byte sets the read size (to exercise requests split anywhere); each whole
 * request goes through routing, query parameter decoding and, with a body,
 * the JSON parser, the members splitter and the job, batch and workflow
 * validators; the headers the gateway keeps (Last-Event-ID among them) are
 * checked. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fuzz.h"
#include "json.h"
#include "request.h"
#include "validate.h"

/* json_object_members() (the CLI's COPY path) splits what
 * json_parse_object() accepted into the members cJSON sees, in order, each
 * value a span that parses to the same value; it may give up only on more
 * than 16 members or on a control byte (whitespace to cJSON, not to JSON). */
static void check_members(const char *s, size_t len, const cJSON *obj)
{
	struct json_member m[16];
	int n = json_object_members(s, len, m, 16), size = cJSON_GetArraySize(obj);
	const cJSON *child = obj->child;
	bool control = false;

	for (size_t i = 0; i < len; i++)
		control |= (unsigned char)s[i] < 0x20 && !strchr("\t\r\n", s[i]);
	if (n < 0) {
		CHECK(size > 16 || control);
		return;
	}
	CHECK(n == size);
	for (int i = 0; i < n; i++, child = child->next) {
		cJSON *v = cJSON_ParseWithLength(m[i].val, m[i].val_len);
		CHECK(m[i].key > s && m[i].key + m[i].key_len < m[i].val && m[i].val + m[i].val_len <= s + len);
		CHECK(v && cJSON_Compare(v, child, true));
		cJSON_Delete(v);
	}
}

static void exercise(const struct http_request *req)
{
	static const char *const params[] = { "limit", "before", "queue", "state", "last_event_id", "types" };
	char buf[64], err[160];
	char *seg = NULL;
	cJSON *body = NULL;
	struct problem p;
	const char *const headers[] = { req->authorization, req->content_type, req->last_event_id };

	if (api_route_find(req->method, req->path, &seg) >= 0)
		free(seg);
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		http_query_param(req->query, params[i], buf, sizeof(buf));
	/* A header the gateway keeps (Last-Event-ID, ...) is absent, or text
	 * without control characters but HTAB: not empty, not cut by a NUL. */
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		if (headers[i] && !headers[i][0])
			abort();
		for (const char *c = headers[i]; c && *c; c++)
			if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
				abort();
	}
	if (req->body_len && json_parse_object(req->body, req->body_len, 64, &body, err, sizeof(err)) == 0) {
		check_members(req->body, req->body_len, body);
		validate_job(body, 0, &p);
		validate_batch(body, 100, &p);
		validate_workflow(body, 100, &p);
		cJSON_Delete(body);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request_parser rp;
	size_t step, off = 1;

	if (size < 1)
		return 0;
	step = data[0] ? data[0] : size;
	request_parser_init(&rp, 4096, 16384);
	while (off < size && !rp.error_status) {
		size_t len = size - off < step ? size - off : step;
		size_t n = request_parser_feed(&rp, (const char *)data + off, len);
		off += n;
		if (rp.complete) {
			exercise(&rp.req);
			request_parser_next(&rp);
		} else if (n < len) {
			break;
		}
	}
	request_parser_free(&rp);
	return 0;
}
