/* etag: entity tags and If-None-Match (see etag.h). */
#include "etag.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

void etag_of(const char *body, size_t len, char *out)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)body[i];
		h *= 1099511628211ULL;
	}
	snprintf(out, ETAG_SIZE, "\"%016llx\"", (unsigned long long)h);
}

static const char *skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

bool etag_none_match(const char *header, const char *etag)
{
	const char *p = skip_ows(header);
	size_t elen = strlen(etag);

	if (*p == '*')
		return *skip_ows(p + 1) == '\0';
	/* #entity-tag: elements separated by commas and blanks, empty ones
	 * allowed (RFC 9110 5.6.1). */
	for (;;) {
		const char *tag, *end;

		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			return false;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (*p != '"')
			return false;
		tag = p;
		end = strchr(p + 1, '"');
		if (end == NULL)
			return false;
		p = end + 1;
		if ((size_t)(p - tag) == elen && memcmp(tag, etag, elen) == 0)
			return true;
		p = skip_ows(p);
		if (*p != ',' && *p != '\0')
			return false;
	}
}
