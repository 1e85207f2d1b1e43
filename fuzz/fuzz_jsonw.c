/* fuzz_jsonw: jsonw_escape and jsonw_utf8_seq (common/jsonw.c), which put
 * request-derived text (paths, reasons) into every JSON error body, and
 * which the message decoder's UTF-8 check shares.
 *
 * The first input byte picks a buffer size (1-256) for a truncating run;
 * the rest is the text. Properties: no crash or undefined behaviour;
 * jsonw_utf8_seq agrees with Table 3-7 of the Unicode Standard at every
 * offset; with room enough, "<output>" is a JSON string (json-c, strict)
 * whose value is the text with each byte that is not UTF-8 replaced by
 * U+FFFD; in a small buffer the output is NUL-terminated, -1 is returned,
 * and what was written is a prefix of the full output that ends between two
 * escapes, never inside one. */
#include <json-c/json.h>
#include <string.h>

#include "fuzz.h"
#include "jsonw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *text = data + 1;
	size_t len = size ? size - 1 : 0, full_size = len * 6 + 3, pos = 0, want_len = 0, small;
	char *full, *want, *quoted, small_buf[257];
	struct json_tokener *tok;
	struct json_object *jobj;
	int rc;

	if (size == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK(jsonw_utf8_seq(text + i, len - i) == ref_utf8_seq(text + i, len - i),
		           "offset %zu: %zu, reference %zu", i, jsonw_utf8_seq(text + i, len - i),
		           ref_utf8_seq(text + i, len - i));

	full = malloc(full_size);
	want = malloc(len * 3 + 1);
	quoted = malloc(full_size + 2);
	if (!full || !want || !quoted)
		goto done;
	/* the value it must come back as: each bad byte is one U+FFFD */
	for (size_t i = 0, n; i < len; i += n) {
		n = ref_utf8_seq(text + i, len - i);
		if (n == 0) {
			memcpy(want + want_len, "\xef\xbf\xbd", 3);
			want_len += 3, n = 1;
		} else {
			memcpy(want + want_len, text + i, n);
			want_len += n;
		}
	}
	rc = jsonw_escape(full, full_size, &pos, (const char *)text, len);
	FUZZ_CHECK(rc == 0 && pos < full_size && full[pos] == '\0', "rc %d, pos %zu", rc, pos);
	FUZZ_CHECK(strlen(full) == pos, "a NUL inside the output");
	quoted[0] = '"';
	memcpy(quoted + 1, full, pos);
	quoted[pos + 1] = '"';
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	jobj = json_tokener_parse_ex(tok, quoted, (int)pos + 2);
	FUZZ_CHECK(jobj != NULL && json_object_is_type(jobj, json_type_string),
	           "not a JSON string: %s", json_tokener_error_desc(json_tokener_get_error(tok)));
	FUZZ_CHECK((size_t)json_object_get_string_len(jobj) == want_len &&
	               memcmp(json_object_get_string(jobj), want, want_len) == 0,
	           "the value differs from the text (%zu bytes, expected %zu)",
	           (size_t)json_object_get_string_len(jobj), want_len);
	json_object_put(jobj);
	json_tokener_free(tok);

	/* truncation: a prefix of the full output, cut between escapes */
	small = (size_t)data[0] + 1;
	pos = 0;
	rc = jsonw_escape(small_buf, small, &pos, (const char *)text, len);
	FUZZ_CHECK(pos < small && small_buf[pos] == '\0', "pos %zu of %zu", pos, small);
	FUZZ_CHECK(memcmp(small_buf, full, pos) == 0, "not a prefix of the full output");
	FUZZ_CHECK(rc == (strlen(full) >= small ? -1 : 0), "rc %d for %zu of %zu bytes", rc,
	           strlen(full), small);
	/* walk the full output escape by escape: the cut must fall between two */
	for (size_t j = 0, t; j < pos; j += t) {
		unsigned char c = (unsigned char)full[j];
		t = c == '\\' ? (full[j + 1] == 'u' ? 6 : 2)
		    : c >= 0x80 ? ref_utf8_seq((const unsigned char *)full + j, strlen(full) - j)
		                : 1;
		FUZZ_CHECK(t > 0, "bad UTF-8 in the output at %zu", j);
		FUZZ_CHECK(j + t <= pos || j >= pos, "cut inside an escape: %zu in [%zu, %zu)", pos,
		           j, j + t);
	}
done:
	free(full);
	free(want);
	free(quoted);
	return 0;
}
