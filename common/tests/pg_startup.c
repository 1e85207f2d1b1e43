/* pg_startup: see pg_startup.h. */
#include "pg_startup.h"

#include <string.h>

const char *pg_startup_value(const char *body, size_t len, const char *key)
{
	for (size_t i = 4; i < len && body[i] != '\0';) {
		const char *k = body + i, *v = k + strnlen(k, len - i) + 1;

		if (v >= body + len)
			break;
		if (strcmp(k, key) == 0)
			return v;
		i = (size_t)(v - body) + strnlen(v, len - (size_t)(v - body)) + 1;
	}
	return NULL;
}
