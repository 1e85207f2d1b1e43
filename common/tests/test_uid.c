/* test_uid: UUID checks, v4 tickets, v5 ids, Idempotency-Key (common/uid.c).
 * v5 vectors are Python's uuid.uuid5 results (RFC 4122 name-based SHA-1). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "uid.h"

#define NS_DNS "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
#define NS_URL "6ba7b811-9dad-11d1-80b4-00c04fd430c8"

/* ---- uid_v5 ------------------------------------------------------------ */

static const struct {
	const char *ns, *name, *want;
} v5_vectors[] = {
    /* uuid.uuid5(uuid.NAMESPACE_DNS, "python.org") */
    {NS_DNS, "python.org", "886313e1-3b8a-5372-9b90-0c9aee199e5d"},
    /* The namespace is case-insensitive; the result is lowercase. */
    {"6BA7B810-9DAD-11D1-80B4-00C04FD430C8", "python.org", "886313e1-3b8a-5372-9b90-0c9aee199e5d"},
    /* uuid.uuid5(uuid.NAMESPACE_URL, "http://python.org/") */
    {NS_URL, "http://python.org/", "4c565f0d-3f5a-5890-b41b-20cf47701c5e"},
    /* The Idempotency-Key namespace is fixed forever: so is this id.
     * uuid.uuid5(UUID("5b8f6c1e-3f0a-4c57-9a55-2f6a7c1d9e40"), "order-42") */
    {UID_IDEMPOTENCY_NAMESPACE, "order-42", "277fbe19-b9a1-5160-8752-8e2947111dda"},
};

START_TEST(v5_matches_known_vector)
{
	char out[UID_TEXT_SIZE];

	memset(out, '#', sizeof(out));
	ck_assert_int_eq(uid_v5(v5_vectors[_i].ns, v5_vectors[_i].name,
	                        strlen(v5_vectors[_i].name), out),
	                 0);
	ck_assert_str_eq(out, v5_vectors[_i].want);
}
END_TEST

START_TEST(v5_uses_name_len_bytes_only)
{
	char out[UID_TEXT_SIZE];

	ck_assert_int_eq(uid_v5(NS_DNS, "python.org.evil", 10, out), 0);
	ck_assert_str_eq(out, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
}
END_TEST

START_TEST(v5_same_name_same_id_other_name_other_id)
{
	char a[UID_TEXT_SIZE], b[UID_TEXT_SIZE], c[UID_TEXT_SIZE];

	ck_assert_int_eq(uid_v5(UID_IDEMPOTENCY_NAMESPACE, "key", 3, a), 0);
	ck_assert_int_eq(uid_v5(UID_IDEMPOTENCY_NAMESPACE, "key", 3, b), 0);
	ck_assert_int_eq(uid_v5(UID_IDEMPOTENCY_NAMESPACE, "kez", 3, c), 0);
	ck_assert_str_eq(a, b);
	ck_assert_str_ne(a, c);
	ck_assert(uid_valid(a, strlen(a)));
	ck_assert_int_eq(a[14], '5');
	ck_assert(strchr("89ab", a[19]) != NULL);
}
END_TEST

static const char *const bad_namespaces[] = {
    "",
    "not-a-uuid",
    "6ba7b810-9dad-11d1-80b4-00c04fd430c",   /* 35 characters */
    "6ba7b810-9dad-11d1-80b4-00c04fd430c8a", /* 37 characters */
    "6ba7b8109dad11d180b400c04fd430c8",      /* no dashes */
    "6ba7b810-9dad-11d1-80b4-00c04fd430cg",  /* non-hex */
    "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
};

START_TEST(v5_rejects_invalid_namespace)
{
	char out[UID_TEXT_SIZE];

	ck_assert_int_eq(uid_v5(bad_namespaces[_i], "python.org", 10, out), -1);
}
END_TEST

/* ---- uid_v4 ------------------------------------------------------------ */

static int cmp_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

START_TEST(v4_gives_valid_lowercase_version4_distinct_ids)
{
	enum { N = 2000 };
	char(*ids)[UID_TEXT_SIZE] = calloc(N, UID_TEXT_SIZE);

	ck_assert_ptr_nonnull(ids);
	for (int i = 0; i < N; i++) {
		uid_v4(ids[i]);
		ck_assert_uint_eq(strlen(ids[i]), 36);
		ck_assert_msg(uid_valid(ids[i], 36), "'%s' invalid", ids[i]);
		ck_assert_msg(ids[i][14] == '4', "'%s' not version 4", ids[i]);
		ck_assert_msg(strchr("89ab", ids[i][19]) != NULL, "'%s' not RFC 4122 variant", ids[i]);
		for (int k = 0; k < 36; k++)
			ck_assert_msg(!(ids[i][k] >= 'A' && ids[i][k] <= 'F'), "'%s' not lowercase", ids[i]);
	}
	qsort(ids, N, UID_TEXT_SIZE, cmp_ids);
	for (int i = 1; i < N; i++)
		ck_assert_msg(strcmp(ids[i - 1], ids[i]) != 0, "duplicate id %s", ids[i]);
	free(ids);
}
END_TEST

/* Each thread draws from a buffer of its own: ids made at the same time by
 * several threads are all different. */
enum { V4_THREADS = 4, V4_PER_THREAD = 1000 };
static char v4_ids[V4_THREADS * V4_PER_THREAD][UID_TEXT_SIZE];

static void *make_v4_ids(void *arg)
{
	char(*ids)[UID_TEXT_SIZE] = arg;

	for (int i = 0; i < V4_PER_THREAD; i++)
		uid_v4(ids[i]);
	return NULL;
}

START_TEST(v4_ids_from_concurrent_threads_are_distinct)
{
	pthread_t th[V4_THREADS];
	const int n = V4_THREADS * V4_PER_THREAD;

	for (int t = 0; t < V4_THREADS; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, make_v4_ids, v4_ids[t * V4_PER_THREAD]), 0);
	for (int t = 0; t < V4_THREADS; t++)
		pthread_join(th[t], NULL);
	qsort(v4_ids, (size_t)n, UID_TEXT_SIZE, cmp_ids);
	for (int i = 0; i < n; i++) {
		ck_assert_msg(uid_valid(v4_ids[i], 36) && v4_ids[i][14] == '4', "'%s'", v4_ids[i]);
		if (i > 0)
			ck_assert_msg(strcmp(v4_ids[i - 1], v4_ids[i]) != 0, "duplicate id %s", v4_ids[i]);
	}
}
END_TEST

/* ---- uid_valid ----------------------------------------------------------- */

static const struct {
	const char *s;
	bool valid;
} valid_table[] = {
    {"6ba7b810-9dad-11d1-80b4-00c04fd430c8", true}, /* v1 */
    {"f47ac10b-58cc-4372-a567-0e02b2c3d479", true}, /* v4 */
    {"886313e1-3b8a-5372-9b90-0c9aee199e5d", true}, /* v5 */
    {"F47AC10B-58CC-4372-A567-0E02B2C3D479", true}, /* upper case */
    {"F47ac10B-58Cc-4372-a567-0E02b2C3d479", true}, /* mixed case */
    {"00000000-0000-0000-0000-000000000000", true}, /* nil */
    {"ffffffff-ffff-ffff-ffff-ffffffffffff", true}, /* max */
    {"", false},
    {"f47ac10b-58cc-4372-a567-0e02b2c3d47", false},    /* 35 */
    {"f47ac10b-58cc-4372-a567-0e02b2c3d4790", false},  /* 37 */
    {"f47ac10b58cc4372a5670e02b2c3d479", false},       /* no dashes */
    {"f47ac10b58cc-4372-a567-0e02b2c3d479-", false},   /* dashes moved */
    {"f47ac10-b58cc-4372-a567-0e02b2c3d479", false},   /* dash one early */
    {"f47ac10b-58cc4-372-a567-0e02b2c3d479", false},   /* dash one late */
    {"f47ac10b-58cc-4372-a5670-e02b2c3d479", false},
    {"f47ac10b-58cc-4372-a567_0e02b2c3d479", false},   /* underscore */
    {"f47ac10g-58cc-4372-a567-0e02b2c3d479", false},   /* g */
    {"f47ac10b-58cc-4372-a567-0e02b2c3d47z", false},   /* z */
    {"f47ac10b-58cc-4372-a567-0e02b2c3d47 ", false},   /* space */
    {" 47ac10b-58cc-4372-a567-0e02b2c3d479", false},
    {"f47ac10b-58cc-4372-a567+0e02b2c3d479", false},
    {"{47ac10b-58cc-4372-a567-0e02b2c3d47}", false},
    {"f47ac10b-58cc-4372-a567-0e02b2c3d4\xc3\xa9", false}, /* non-ASCII */
    {"------------------------------------", false},
    /* The neighbours of the hex ranges: '/' ':' '@' 'G' '`' 'g', and 0xff. */
    {"f47ac10b-58cc-4372-a567-0e02b2c3d47/", false},
    {"f47ac10b-58cc-4372-a567-0e02b2c3d47:", false},
    {"f47ac10b-58cc-4372-a567-0e02b2c3d47@", false},
    {"f47ac10b-58cc-4372-a567-0e02b2c3d47G", false},
    {"f47ac10b-58cc-4372-a567-0e02b2c3d47`", false},
    {"f47ac10b-58cc-4372-a567-0e02b2c3d47g", false},
    {"f47ac10b-58cc-4372-a567-0e02b2c3d47\xff", false},
    {"f47ac10b-58cc-4372-a567-0e02b2c3d4-9", false},   /* a dash for a digit */
};

START_TEST(valid_accepts_any_version_and_case_rejects_the_rest)
{
	const char *s = valid_table[_i].s;

	ck_assert_msg(uid_valid(s, strlen(s)) == valid_table[_i].valid, "'%s': want %s", s,
	              valid_table[_i].valid ? "valid" : "invalid");
}
END_TEST

START_TEST(valid_honours_len)
{
	static const char s[] = "f47ac10b-58cc-4372-a567-0e02b2c3d479trailing";
	static const char nul[] = "f47ac10b-58cc-4372-a567-0e02b2c3d4\0009";

	ck_assert(uid_valid(s, 36));
	ck_assert(!uid_valid(s, 35));
	ck_assert(!uid_valid(s, strlen(s)));
	ck_assert(!uid_valid(nul, 36)); /* a NUL inside the 36 bytes */
}
END_TEST

START_TEST(normalize_lowercases)
{
	char out[UID_TEXT_SIZE];

	memset(out, '#', sizeof(out));
	uid_normalize("F47AC10B-58CC-4372-A567-0E02B2C3D479", out);
	ck_assert_str_eq(out, "f47ac10b-58cc-4372-a567-0e02b2c3d479");
	uid_normalize("f47ac10b-58cc-4372-a567-0e02b2c3d479", out);
	ck_assert_str_eq(out, "f47ac10b-58cc-4372-a567-0e02b2c3d479");
}
END_TEST

/* ---- Idempotency-Key ----------------------------------------------------- */

START_TEST(idempotency_key_length_1_to_255)
{
	char key[300];

	memset(key, 'k', sizeof(key));
	ck_assert(uid_idempotency_key_valid(key, 1));
	ck_assert(uid_idempotency_key_valid(key, 36));
	ck_assert(uid_idempotency_key_valid(key, 255));
	ck_assert(!uid_idempotency_key_valid(key, 0));
	ck_assert(!uid_idempotency_key_valid("", 0));
	ck_assert(!uid_idempotency_key_valid(key, 256));
	ck_assert(!uid_idempotency_key_valid(key, 300));
}
END_TEST

START_TEST(idempotency_key_accepts_all_visible_ascii)
{
	char key[0x7f - 0x21];

	for (int c = 0x21; c < 0x7f; c++)
		key[c - 0x21] = (char)c;
	ck_assert(uid_idempotency_key_valid(key, sizeof(key)));
}
END_TEST

static const struct {
	const char *key;
	size_t len;
} bad_keys[] = {
    {"a b", 3},          /* space */
    {" ab", 3},
    {"ab ", 3},
    {"a\tb", 3},         /* tab */
    {"a\nb", 3},         /* newline */
    {"a\rb", 3},
    {"a\001b", 3},       /* control */
    {"a\177b", 3},       /* DEL */
    {"a\0b", 3},         /* NUL inside len */
    {"caf\xc3\xa9", 5},  /* UTF-8 é */
    {"\xff", 1},
    {"\x80", 1},
};

START_TEST(idempotency_key_rejects_space_control_non_ascii)
{
	ck_assert_msg(!uid_idempotency_key_valid(bad_keys[_i].key, bad_keys[_i].len),
	              "row %d accepted", _i);
}
END_TEST

Suite *make_uid_suite(void)
{
	Suite *s = suite_create("uid");
	TCase *tc;

	tc = tcase_create("v5");
	tcase_add_loop_test(tc, v5_matches_known_vector, 0, TABLE_LEN(v5_vectors));
	tcase_add_test(tc, v5_uses_name_len_bytes_only);
	tcase_add_test(tc, v5_same_name_same_id_other_name_other_id);
	tcase_add_loop_test(tc, v5_rejects_invalid_namespace, 0, TABLE_LEN(bad_namespaces));
	suite_add_tcase(s, tc);

	tc = tcase_create("v4");
	tcase_add_test(tc, v4_gives_valid_lowercase_version4_distinct_ids);
	tcase_add_test(tc, v4_ids_from_concurrent_threads_are_distinct);
	suite_add_tcase(s, tc);

	tc = tcase_create("valid");
	tcase_add_loop_test(tc, valid_accepts_any_version_and_case_rejects_the_rest, 0,
	                    TABLE_LEN(valid_table));
	tcase_add_test(tc, valid_honours_len);
	tcase_add_test(tc, normalize_lowercases);
	suite_add_tcase(s, tc);

	tc = tcase_create("idempotency_key");
	tcase_add_test(tc, idempotency_key_length_1_to_255);
	tcase_add_test(tc, idempotency_key_accepts_all_visible_ascii);
	tcase_add_loop_test(tc, idempotency_key_rejects_space_control_non_ascii, 0,
	                    TABLE_LEN(bad_keys));
	suite_add_tcase(s, tc);

	return s;
}
