/* client: libcurl requests with the headers the tests look at captured. */
#include "client.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct upload {
	const char *data;
	size_t len, pos;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct http_resp *resp = userdata;
	size_t n = size * nmemb;
	char *grown = realloc(resp->body, resp->body_len + n + 1);

	if (grown == NULL)
		return 0; /* curl fails the transfer */
	memcpy(grown + resp->body_len, ptr, n);
	resp->body = grown;
	resp->body_len += n;
	resp->body[resp->body_len] = '\0';
	return n;
}

/* Copies the value of header line "Name: value\r\n" into out if the name
 * matches. */
static void capture(const char *line, size_t len, const char *name, char *out,
                    size_t out_size)
{
	size_t nlen = strlen(name);

	if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
		return;
	line += nlen + 1;
	len -= nlen + 1;
	while (len > 0 && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' ||
	                   line[len - 1] == ' '))
		len--;
	snprintf(out, out_size, "%.*s", (int)len, line);
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
	struct http_resp *resp = userdata;
	size_t n = size * nmemb;

	/* A new status line (after a 100 Continue) starts a new header set. */
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		resp->cid[0] = resp->retry_after[0] = resp->allow[0] = '\0';
		resp->content_type[0] = '\0';
		resp->etag[0] = resp->cache_control[0] = resp->location[0] = resp->link[0] = '\0';
	}
	capture(line, n, "correlationId", resp->cid, sizeof(resp->cid));
	capture(line, n, "Retry-After", resp->retry_after, sizeof(resp->retry_after));
	capture(line, n, "Allow", resp->allow, sizeof(resp->allow));
	capture(line, n, "Content-Type", resp->content_type, sizeof(resp->content_type));
	capture(line, n, "ETag", resp->etag, sizeof(resp->etag));
	capture(line, n, "Cache-Control", resp->cache_control, sizeof(resp->cache_control));
	capture(line, n, "Location", resp->location, sizeof(resp->location));
	capture(line, n, "Link", resp->link, sizeof(resp->link));
	return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct upload *up = userdata;
	size_t n = size * nitems;

	if (n > up->len - up->pos)
		n = up->len - up->pos;
	memcpy(buf, up->data + up->pos, n);
	up->pos += n;
	return n;
}

int http_request(CURL *curl, const char *method, const char *url,
                 const char *const *headers, const void *body, size_t body_len,
                 struct http_resp *resp)
{
	struct curl_slist *list = NULL;
	struct upload up = {.data = body, .len = body ? body_len : 0};
	bool own = curl == NULL, chunked = false;
	CURLcode rc;

	memset(resp, 0, sizeof(*resp));
	if (own && (curl = curl_easy_init()) == NULL) {
		snprintf(resp->errstr, sizeof(resp->errstr), "curl_easy_init failed");
		return -1;
	}
	curl_easy_reset(curl); /* keeps the connection cache */
	for (; headers != NULL && *headers != NULL; headers++) {
		struct curl_slist *l = curl_slist_append(list, *headers);
		if (l == NULL) {
			snprintf(resp->errstr, sizeof(resp->errstr), "out of memory");
			curl_slist_free_all(list);
			if (own)
				curl_easy_cleanup(curl);
			return -1;
		}
		list = l;
		if (strcasecmp(*headers, "Transfer-Encoding: chunked") == 0)
			chunked = true;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 20000L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, resp->errstr);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(curl, CURLOPT_READDATA, &up);
		if (!chunked)
			curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)up.len);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	}
	rc = curl_easy_perform(curl);
	resp->curl_code = rc;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
	} else if (resp->errstr[0] == '\0') {
		snprintf(resp->errstr, sizeof(resp->errstr), "%s", curl_easy_strerror(rc));
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(list);
	if (own)
		curl_easy_cleanup(curl);
	return rc == CURLE_OK ? 0 : -1;
}

int http_get(const char *url, const char *const *headers, struct http_resp *resp)
{
	return http_request(NULL, "GET", url, headers, NULL, 0, resp);
}

int http_post(const char *url, const char *const *headers, struct http_resp *resp)
{
	return http_request(NULL, "POST", url, headers, NULL, 0, resp);
}

void http_resp_clear(struct http_resp *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
}

json_object *http_resp_json(const struct http_resp *resp)
{
	json_object *jobj;

	if (resp->body == NULL)
		return NULL;
	jobj = json_tokener_parse(resp->body);
	if (jobj != NULL && !json_object_is_type(jobj, json_type_object)) {
		json_object_put(jobj);
		return NULL;
	}
	return jobj;
}

const char *json_str(json_object *jobj, const char *key)
{
	json_object *field;

	if (jobj == NULL || !json_object_object_get_ex(jobj, key, &field) ||
	    !json_object_is_type(field, json_type_string))
		return NULL;
	return json_object_get_string(field);
}
