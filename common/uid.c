/* uid: UUID text helpers: v4 tickets, v5 ids from Idempotency-Key, checks. */
#include "uid.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <uuid/uuid.h>

/* What each of the 36 characters may be: a hex digit, or '-' at 8, 13, 18
 * and 23. A table rather than isxdigit, which calls __ctype_b_loc for every
 * character: uid_valid was 6 % of consumer-service's CPU on a backlog (three
 * ids a message), in perf. */
static const bool hex_digit[256] = {['0' ... '9'] = true, ['a' ... 'f'] = true, ['A' ... 'F'] = true};

bool uid_valid(const char *s, size_t len)
{
	bool ok = true;

	if (len != 36)
		return false;
	for (size_t i = 0; i < 36; i++)
		ok &= i == 8 || i == 13 || i == 18 || i == 23 ? s[i] == '-' : hex_digit[(unsigned char)s[i]];
	return ok;
}

/* libuuid's uuid_generate_random reseeds random() and reads getrandom()
 * for every id (3 % of a POST's CPU in perf). Here each thread draws 256
 * bytes from getrandom() at a time (the kernel's CSPRNG, as libuuid uses)
 * and cuts 16 ids from them. The services never fork, so no two processes
 * share a buffer. */
void uid_v4(char *out)
{
	static _Thread_local unsigned char pool[16 * 16];
	static _Thread_local size_t used = sizeof(pool);
	uuid_t u = {0};

	if (used == sizeof(pool)) {
		size_t got = 0;
		ssize_t n;

		while (got < sizeof(pool) &&
		       ((n = getrandom(pool + got, sizeof(pool) - got, 0)) > 0 || errno == EINTR))
			got += n > 0 ? (size_t)n : 0;
		if (got < sizeof(pool)) { /* no getrandom (very old kernel): libuuid's way */
			uuid_generate_random(u);
			uuid_unparse_lower(u, out);
			return;
		}
		used = 0;
	}
	memcpy(u, pool + used, sizeof(u));
	memset(pool + used, 0, sizeof(u)); /* an id's bytes are not kept after it is made */
	used += sizeof(u);
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
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
