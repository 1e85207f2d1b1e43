/* fuzz_trace: the W3C trace context parser of common/trace.c on any bytes:
 * the input up to the first newline is a traceparent, the rest a tracestate.
 *
 * Properties: no crash or undefined behaviour; trace_parse accepts exactly
 * the traceparents a plain restatement of W3C's rules accepts, with its ids
 * and flags; what it accepts formats back as version 00 of the same ids; a
 * refused traceparent leaves no context; a kept tracestate is the input
 * itself, printable ASCII, at most TRACE_STATE_MAX bytes, with a member. */
#include <string.h>

#include "fuzz.h"
#include "trace.h"

static int lhex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* W3C Trace Context: version (2 lowercase hex, not ff) "-" trace-id (32) "-"
 * parent-id (16) "-" flags (2); nothing after for version 00, "-" and
 * anything after for a later one; neither id all zeros. */
static int ref_traceparent(const char *s, size_t len)
{
	static const char shape[] = "vv-tttttttttttttttttttttttttttttttt-pppppppppppppppp-ff";
	int trace_nonzero = 0, parent_nonzero = 0;

	if (len < 55 || (len > 55 && (s[55] != '-' || memcmp(s, "00", 2) == 0)))
		return 0;
	for (size_t i = 0; i < 55; i++) {
		if (shape[i] == '-' ? s[i] != '-' : !lhex(s[i]))
			return 0;
		if (shape[i] == 't' && s[i] != '0')
			trace_nonzero = 1;
		if (shape[i] == 'p' && s[i] != '0')
			parent_nonzero = 1;
	}
	return memcmp(s, "ff", 2) != 0 && trace_nonzero && parent_nonzero;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t tp_len = nl ? (size_t)(nl - (const char *)data) : size;
	char *tp = malloc(tp_len + 1), *ts = NULL, out[TRACE_PARENT_SIZE];
	struct trace_ctx c;
	int rc, want;

	if (tp == NULL)
		return 0;
	memcpy(tp, data, tp_len);
	tp[tp_len] = '\0';
	if (nl != NULL) {
		size_t ts_len = size - tp_len - 1;
		if ((ts = malloc(ts_len + 1)) == NULL) {
			free(tp);
			return 0;
		}
		memcpy(ts, nl + 1, ts_len);
		ts[ts_len] = '\0';
	}
	rc = trace_parse(tp, ts, &c);
	want = ref_traceparent(tp, strlen(tp)); /* a NUL ends the header */
	FUZZ_CHECK((rc == 0) == want, "trace_parse says %d for '%s'", rc, tp);
	if (rc == 0) {
		trace_format(&c, out);
		FUZZ_CHECK(strncmp(out, "00-", 3) == 0 && strncmp(out + 3, tp + 3, 52) == 0,
		           "'%s' formats as '%s'", tp, out);
		FUZZ_CHECK(trace_ctx_valid(&c), "'%s' gives no context", tp);
		if (c.state[0] != '\0') {
			FUZZ_CHECK(ts != NULL && strcmp(c.state, ts) == 0, "kept '%s' of '%s'", c.state,
			           ts ? ts : "(no tracestate)");
			FUZZ_CHECK(strlen(c.state) <= TRACE_STATE_MAX, "kept %zu bytes", strlen(c.state));
			for (const char *p = c.state; *p; p++) {
				FUZZ_CHECK((*p >= 0x20 && *p <= 0x7e) || *p == '\t', "kept byte 0x%02x",
				           (unsigned char)*p);
			}
			/* only empty members: nothing to pass on */
			FUZZ_CHECK(strchr(c.state, '=') != NULL, "kept '%s' without a member", c.state);
		}
	} else {
		FUZZ_CHECK(!trace_ctx_valid(&c) && c.flags == 0 && c.state[0] == '\0',
		           "'%s' refused but a context left", tp);
	}
	free(tp);
	free(ts);
	return 0;
}
