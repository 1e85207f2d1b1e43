/* jsonw: append JSON-escaped strings to a fixed buffer (no allocation). */
#include "jsonw.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

size_t jsonw_utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp, min;

	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		n = 1, cp = c & 0x1f, min = 0x80;
	else if ((c & 0xf0) == 0xe0)
		n = 2, cp = c & 0x0f, min = 0x800;
	else if ((c & 0xf8) == 0xf0)
		n = 3, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if (n >= len)
		return 0;
	for (size_t k = 1; k <= n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n + 1;
}

int jsonw_escape(char *buf, size_t size, size_t *pos, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t p = *pos;
	int rc = 0;

	if (len == (size_t)-1)
		len = strlen(s);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		size_t n;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			n = 2;
		} else if (c == '\n') {
			memcpy(esc, "\\n", 2);
			n = 2;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		} else if (c >= 0x80) {
			size_t seq = jsonw_utf8_seq((const unsigned char *)s + i, len - i);
			if (seq == 0) {
				memcpy(esc, "\\ufffd", 6);
				n = 6;
			} else {
				memcpy(esc, s + i, seq);
				n = seq;
				i += seq - 1;
			}
		} else {
			esc[0] = (char)c;
			n = 1;
		}
		if (p + n >= size) {
			rc = -1;
			break;
		}
		memcpy(buf + p, esc, n);
		p += n;
	}
	if (size > 0)
		buf[p < size ? p : size - 1] = '\0';
	*pos = p;
	return rc;
}

int jsonw_append(char *buf, size_t size, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= size)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, size - *pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size - *pos) {
		*pos = size - 1;
		return -1;
	}
	*pos += (size_t)n;
	return 0;
}
