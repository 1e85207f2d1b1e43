/* uid: UUID text helpers: v4 tickets, v5 ids from Idempotency-Key, checks. */
#include "uid.h"

#include <ctype.h>
#include <string.h>
#include <uuid/uuid.h>

bool uid_valid(const char *s, size_t len)
{
	if (len != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

void uid_v4(char *out)
{
	uuid_t u;
	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

int uid_v5(const char *ns, const char *name, size_t name_len, char *out)
{
	uuid_t nsu, u;

	if (!uid_valid(ns, strlen(ns)) || uuid_parse(ns, nsu) != 0)
		return -1;
	uuid_generate_sha1(u, nsu, name, name_len);
	uuid_unparse_lower(u, out);
	return 0;
}

bool uid_idempotency_key_valid(const char *s, size_t len)
{
	if (len < 1 || len > 255)
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	}
	return true;
}

void uid_normalize(const char *s, char *out)
{
	for (size_t i = 0; i < 36; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[36] = '\0';
}
