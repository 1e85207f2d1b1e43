/* fuzz_http: what the services do with a request's path and its correlationId
 * and Idempotency-Key headers, before any route runs: http_req_init (path
 * percent-decoding, correlation id, size limits) and http_header, from
 * common/http.c, followed by the Idempotency-Key steps of command-service's
 * api.c (uid_idempotency_key_valid, uid_v5).
 *
 * No server runs: this target defines mg_get_request_info and mg_get_header
 * itself, which take precedence over libcivetweb's, and serves a request made
 * from the input: its first line is the path as civetweb hands it over (not
 * yet decoded), every further line a header "name:value".
 *
 * Properties: no crash or undefined behaviour; the status agrees with a
 * plain restatement of http.h's contract (order of checks included); a 0
 * gives the decoded path and the correlation id as sent (correlationId when
 * both headers are), or a fresh one; a 400 for a correlation header leaves
 * a fresh id for the reply, not one of the headers'. */
#include <civetweb.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "http.h"
#include "log.h"
#include "uid.h"

static struct mg_request_info ri;

const struct mg_request_info *mg_get_request_info(const struct mg_connection *conn)
{
	(void)conn;
	return &ri;
}

/* As civetweb: the first header of that name, any case. */
const char *mg_get_header(const struct mg_connection *conn, const char *name)
{
	(void)conn;
	for (int i = 0; i < ri.num_headers; i++)
		if (strcasecmp(ri.http_headers[i].name, name) == 0)
			return ri.http_headers[i].value;
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	log_setup("fuzz_http", LOG_ERROR);
	return 0;
}

static int hex(char c)
{
	const char *digits = "0123456789abcdef", *p;
	if (c == '\0' || (p = strchr(digits, tolower((unsigned char)c))) == NULL)
		return -1;
	return (int)(p - digits);
}

/* Decodes like http.h says: %XX escapes, not %00, '+' stays; fails with 400
 * or 414 (over HTTP_PATH_MAX bytes decoded), whichever comes first. */
static int ref_decode(const char *src, char *dst, size_t *len)
{
	size_t o = 0;

	while (*src) {
		char c = *src++;
		if (c == '%') {
			if (hex(src[0]) < 0 || hex(src[1]) < 0 || (src[0] == '0' && src[1] == '0'))
				return 400;
			c = (char)(hex(src[0]) * 16 + hex(src[1]));
			src += 2;
		}
		if (o == HTTP_PATH_MAX)
			return 414;
		dst[o++] = c;
	}
	dst[o] = '\0';
	*len = o;
	return 0;
}

/* Trims blanks as http_header does; NULL when the header is absent. */
static const char *trimmed(const char *name, size_t *len)
{
	const char *v = mg_get_header(NULL, name);
	if (v == NULL)
		return NULL;
	while (*v == ' ' || *v == '\t')
		v++;
	*len = strlen(v);
	while (*len > 0 && (v[*len - 1] == ' ' || v[*len - 1] == '\t'))
		(*len)--;
	return v;
}

/* A correlation header that http.h says makes a 400: present, not a UUID. */
static int bad_cid(const char *v, size_t len);

static int ref_valid_uuid(const char *s, size_t len)
{
	if (len != 36)
		return 0;
	for (size_t i = 0; i < 36; i++) {
		bool hyphen = i == 8 || i == 13 || i == 18 || i == 23;
		if (hyphen ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

static int bad_cid(const char *v, size_t len)
{
	return v != NULL && (len >= 64 || !ref_valid_uuid(v, len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_req req;
	static char path_ref[HTTP_PATH_MAX + 1];
	char *copy, *line, *save = NULL, key[256];
	const char *why = NULL, *cid, *xcid;
	size_t cid_len = 0, xcid_len = 0, key_len = 0, path_len = 0, header_bytes = 0;
	int status, want, n;
	bool path_checked = false;

	/* a NUL-terminated copy: civetweb's strings end at the first NUL */
	copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	memset(&ri, 0, sizeof(ri));
	ri.request_method = "POST";
	line = strchr(copy, '\n');
	if (line != NULL)
		*line++ = '\0';
	ri.local_uri = copy;
	for (line = line ? strtok_r(line, "\n", &save) : NULL;
	     line != NULL && ri.num_headers < MG_MAX_HEADERS; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');
		ri.http_headers[ri.num_headers].name = line;
		ri.http_headers[ri.num_headers].value = colon ? colon + 1 : "";
		if (colon)
			*colon = '\0';
		header_bytes += strlen(ri.http_headers[ri.num_headers].name) +
		                strlen(ri.http_headers[ri.num_headers].value) + 4;
		ri.num_headers++;
	}

	/* what http.h promises, in its order: correlation ids, headers, path */
	cid = trimmed("correlationId", &cid_len);
	xcid = trimmed("X-Correlation-ID", &xcid_len);
	if (bad_cid(cid, cid_len) || bad_cid(xcid, xcid_len))
		want = 400;
	else if (header_bytes > HTTP_HEADERS_MAX || ri.num_headers >= MG_MAX_HEADERS)
		want = 431;
	else
		want = ref_decode(ri.local_uri, path_ref, &path_len), path_checked = true;

	memset(&req, 0x5a, sizeof(req));
	status = http_req_init(&req, (struct mg_connection *)&ri, &why);
	FUZZ_CHECK(status == want, "http_req_init %d (%s), expected %d", status, why ? why : "",
	           want);
	FUZZ_CHECK(status == 0 || (why != NULL && *why != '\0'), "%d without a reason", status);
	FUZZ_CHECK(ref_valid_uuid(req.cid, strlen(req.cid)), "correlation id '%s'", req.cid);
	if (status == 0) {
		FUZZ_CHECK(strlen(req.path) == path_len && !memcmp(req.path, path_ref, path_len),
		           "path '%s', expected '%s'", req.path, path_ref);
		if (cid == NULL)
			cid = xcid, cid_len = xcid_len;
		FUZZ_CHECK(cid == NULL || strncmp(req.cid, cid, 36) == 0, "cid '%s' for '%.*s'",
		           req.cid, (int)cid_len, cid);
	}
	if (status == 400 && !path_checked) {
		FUZZ_CHECK((cid == NULL || strncasecmp(req.cid, cid, 36) != 0) &&
		               (xcid == NULL || strncasecmp(req.cid, xcid, 36) != 0),
		           "a 400 for a correlation header, but the reply carries '%s'", req.cid);
	}
	if (path_checked && status != 0)
		FUZZ_CHECK(req.path_bad && *req.path == '\0', "a path error without path_bad");

	/* command-service's Idempotency-Key steps (api.c) */
	n = http_header(NULL, "Idempotency-Key", key, sizeof(key));
	if (trimmed("Idempotency-Key", &key_len) == NULL) {
		FUZZ_CHECK(n == -1, "absent header gave %d", n);
	} else if (key_len >= sizeof(key)) {
		FUZZ_CHECK(n == -2, "%zu bytes gave %d", key_len, n);
	} else {
		char id[UID_TEXT_SIZE];
		FUZZ_CHECK(n == (int)key_len && strlen(key) == key_len, "length %d, not %zu", n,
		           key_len);
		if (uid_idempotency_key_valid(key, (size_t)n)) {
			int rc = uid_v5(UID_IDEMPOTENCY_NAMESPACE, key, (size_t)n, id);
			FUZZ_CHECK(rc == 0, "uid_v5 refused the key");
			FUZZ_CHECK(ref_valid_uuid(id, strlen(id)) && id[14] == '5', "id '%s'", id);
		}
	}
	free(copy);
	return 0;
}
