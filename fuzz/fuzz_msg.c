/* fuzz_msg: msg_decode and msg_encode (common/msg.c), the one definition of
 * the Kafka wire format, on any message value.
 *
 * Properties: no crash, leak or undefined behaviour; a refusal always has a
 * reason; a value that is not UTF-8 (Table 3-7 of the Unicode Standard) is
 * refused as such, and only such a value; what decodes has a lowercase
 * valid UUID and an instant in range, encodes within MSG_ENCODED_MAX, and
 * decodes back to the same command; the value after a space (which only
 * json-c reads: the decoder reads a value exactly in the wire format
 * without it) gets the same verdict, reason and command. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "msg.h"
#include "uid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg_command m, back;
	char err[256], buf[MSG_ENCODED_MAX];
	size_t n;

	size_t utf8 = 0;
	int rc;

	memset(&m, 0x5a, sizeof(m)); /* garbage, so that unset fields show */
	err[0] = '\0';
	rc = msg_decode(data, size, &m, err, sizeof(err));
	while (utf8 < size && (n = ref_utf8_seq(data + utf8, size - utf8)) > 0)
		utf8 += n;
	/* the checks before it: empty, too large, a NUL */
	if (size > 0 && size <= MSG_VALUE_MAX && memchr(data, '\0', size) == NULL)
		FUZZ_CHECK((strstr(err, "UTF-8") != NULL) == (utf8 < size),
		           "well-formed UTF-8 up to %zu of %zu bytes, yet: '%s'", utf8, size, err);
	if (size > 0 && size < MSG_VALUE_MAX) {
		struct msg_command spaced;
		char spaced_err[256] = "";
		char *v = malloc(size + 1);

		FUZZ_CHECK(v != NULL, "out of memory");
		v[0] = ' ';
		memcpy(v + 1, data, size);
		memset(&spaced, 0x5a, sizeof(spaced));
		FUZZ_CHECK(msg_decode(v, size + 1, &spaced, spaced_err, sizeof(spaced_err)) == rc &&
		               strcmp(spaced_err, err) == 0,
		           "%d '%s', after a space: '%s'", rc, err, spaced_err);
		FUZZ_CHECK(rc != 0 || (strcmp(spaced.command_id, m.command_id) == 0 &&
		                       spaced.event_time.sec == m.event_time.sec &&
		                       spaced.event_time.nsec == m.event_time.nsec),
		           "after a space, another command");
		free(v);
	}
	if (rc != 0) {
		FUZZ_CHECK(err[0] != '\0', "refused without a reason");
		FUZZ_CHECK(strlen(err) < sizeof(err), "reason not terminated");
		return 0;
	}
	FUZZ_CHECK(memchr(m.command_id, '\0', sizeof(m.command_id)) == &m.command_id[36],
	           "command_id is not 36 characters");
	FUZZ_CHECK(uid_valid(m.command_id, 36), "command_id '%s'", m.command_id);
	for (int i = 0; i < 36; i++)
		FUZZ_CHECK(!isupper((unsigned char)m.command_id[i]), "'%s'", m.command_id);
	FUZZ_CHECK(m.event_time.nsec >= 0 && m.event_time.nsec <= 999999999, "nsec %d",
	           (int)m.event_time.nsec);

	n = msg_encode(&m, buf);
	FUZZ_CHECK(n < MSG_ENCODED_MAX && n == strlen(buf), "encoded length %zu", n);
	FUZZ_CHECK(msg_decode(buf, n, &back, err, sizeof(err)) == 0, "'%s': %s", buf, err);
	FUZZ_CHECK(strcmp(back.command_id, m.command_id) == 0 &&
	               back.event_time.sec == m.event_time.sec &&
	               back.event_time.nsec == m.event_time.nsec,
	           "'%s' decodes to another command", buf);
	return 0;
}
