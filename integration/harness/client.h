/* client: a small libcurl HTTP client for the tests, and JSON helpers. */
#ifndef INTEGRATION_CLIENT_H
#define INTEGRATION_CLIENT_H

#include <curl/curl.h>
#include <json-c/json.h>
#include <stddef.h>

/* One response. The header fields are "" when the header was absent. */
struct http_resp {
	long status;          /* 0 when the request failed (see errstr) */
	char *body;           /* NUL-terminated, owned; NULL if none */
	size_t body_len;
	char cid[128];        /* correlationId */
	char retry_after[32]; /* Retry-After */
	char allow[64];       /* Allow */
	char content_type[128];
	char etag[128];          /* ETag */
	char cache_control[128]; /* Cache-Control */
	char location[512];      /* Location */
	char link[1024];         /* Link */
	char errstr[CURL_ERROR_SIZE];
	CURLcode curl_code; /* CURLE_OK when a response arrived */
};

/* Sends one request and fills *resp (clear it with http_resp_clear, even
 * after a failure). curl may be NULL (a handle just for this request) or a
 * handle of the caller's, reused for keep-alive; one handle per thread.
 * headers is NULL or a NULL-terminated list of "Name: value" lines ("Name;"
 * sends an empty value). body is sent only with POST; with a
 * "Transfer-Encoding: chunked" header it goes chunked. The path of url is
 * sent exactly as given (no dot-segment squashing). Returns 0 when a
 * response arrived, -1 otherwise. */
int http_request(CURL *curl, const char *method, const char *url,
                 const char *const *headers, const void *body, size_t body_len,
                 struct http_resp *resp) __attribute__((warn_unused_result));

/* GET and POST (without a body) shorthands of http_request. */
int http_get(const char *url, const char *const *headers, struct http_resp *resp)
    __attribute__((warn_unused_result));
int http_post(const char *url, const char *const *headers, struct http_resp *resp)
    __attribute__((warn_unused_result));

/* Frees the body; the struct can be reused. */
void http_resp_clear(struct http_resp *resp);

/* The body parsed as a JSON object (the caller puts it), or NULL. */
json_object *http_resp_json(const struct http_resp *resp);

/* The string member key of jobj, or NULL if absent or not a string. The
 * string belongs to jobj. */
const char *json_str(json_object *jobj, const char *key);

#endif
