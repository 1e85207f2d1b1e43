/* fuzz_uid: the UUID and Idempotency-Key checks of common/uid.c on any bytes:
 * uid_valid, uid_normalize, uid_idempotency_key_valid and uid_v5 (with the
 * input as the name, and as the namespace).
 *
 * Properties: no crash or undefined behaviour; uid_valid and
 * uid_idempotency_key_valid agree with plain restatements of their contract;
 * a valid key always yields a v5 UUID (version 5, RFC 4122 variant), the same
 * one every time; uid_v5 takes exactly the namespaces uid_valid takes. */
#include <ctype.h>
#include <string.h>

#include "fuzz.h"
#include "uid.h"

static int ref_uuid(const char *s, size_t len)
{
	if (len != 36)
		return 0;
	for (size_t i = 0; i < len; i++) {
		int hyphen = i == 8 || i == 13 || i == 18 || i == 23;
		int hex = s[i] != '\0' && strchr("0123456789abcdefABCDEF", s[i]) != NULL;
		if (hyphen ? s[i] != '-' : !hex)
			return 0;
	}
	return 1;
}

static int ref_key(const char *s, size_t len)
{
	if (len == 0 || len > 255)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/* A lowercase v5 UUID of the RFC 4122 variant. */
static int is_v5(const char *u)
{
	if (!ref_uuid(u, strlen(u)) || u[14] != '5' || strchr("89ab", u[19]) == NULL)
		return 0;
	for (int i = 0; i < 36; i++)
		if (isupper((unsigned char)u[i]))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char out[UID_TEXT_SIZE], again[UID_TEXT_SIZE], *ns;
	bool valid = uid_valid(s, size), key = uid_idempotency_key_valid(s, size);
	int rc;

	FUZZ_CHECK(valid == ref_uuid(s, size), "uid_valid says %d for '%.*s'", valid, (int)size, s);
	FUZZ_CHECK(key == ref_key(s, size), "uid_idempotency_key_valid says %d for '%.*s'", key,
	           (int)size, s);
	if (valid) {
		uid_normalize(s, out);
		FUZZ_CHECK(strlen(out) == 36 && strncasecmp(out, s, 36) == 0, "'%s'", out);
		for (int i = 0; i < 36; i++)
			FUZZ_CHECK(!isupper((unsigned char)out[i]), "'%s' not lowercase", out);
	}
	if (key) {
		/* what command-service does with an Idempotency-Key */
		FUZZ_CHECK(uid_v5(UID_IDEMPOTENCY_NAMESPACE, s, size, out) == 0, "uid_v5 refused");
		FUZZ_CHECK(is_v5(out), "'%s' is not a v5 UUID", out);
		FUZZ_CHECK(uid_v5(UID_IDEMPOTENCY_NAMESPACE, s, size, again) == 0 &&
		               strcmp(out, again) == 0,
		           "'%s' then '%s'", out, again);
	}
	/* the input as the namespace: accepted exactly when it is a UUID */
	ns = malloc(size + 1);
	if (ns == NULL)
		return 0;
	memcpy(ns, data, size);
	ns[size] = '\0';
	rc = uid_v5(ns, "name", 4, out);
	FUZZ_CHECK((rc == 0) == ref_uuid(ns, strlen(ns)), "uid_v5 with namespace '%s': %d", ns, rc);
	FUZZ_CHECK(rc != 0 || is_v5(out), "'%s'", out);
	free(ns);
	return 0;
}
