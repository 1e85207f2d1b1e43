/* etag: validators for what never changes. A found record is immutable,
 * so its ETag is a hash of the body it is answered with: the same from
 * every replica and after a replay, different for a different record. */
#ifndef QUERY_ETAG_H
#define QUERY_ETAG_H

#include <stdbool.h>
#include <stddef.h>

/* "\"" 16 hex digits "\"" and the NUL. */
#define ETAG_SIZE 19

/* Writes the strong entity tag of body[0..len) into out[ETAG_SIZE]: the
 * 64-bit FNV-1a hash of the bytes, quoted. Not a defence against anyone:
 * it tells apart the bodies one URL can have. */
void etag_of(const char *body, size_t len, char *out);

/* True when an If-None-Match value (RFC 9110 13.1.2) matches etag (one
 * etag_of wrote): "*", or a list of entity tags one of which is etag by
 * the weak comparison (W/ ignored). A value that is not well formed
 * matches nothing: the request is answered in full. */
bool etag_none_match(const char *header, const char *etag);

#endif
