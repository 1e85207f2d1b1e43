/* jsonw: append JSON-escaped strings to a fixed buffer (no allocation). */
#ifndef COMMON_JSONW_H
#define COMMON_JSONW_H

#include <stddef.h>

/* The length (1-4) of the well-formed UTF-8 sequence (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF) at s[0..len), or 0
 * when there is none. */
size_t jsonw_utf8_seq(const unsigned char *s, size_t len);

/* Appends s (len bytes, or strlen if len == (size_t)-1) to buf at *pos as a
 * JSON string body (without quotes), escaping quotes, backslashes and
 * control characters; bytes that are not UTF-8 become U+FFFD. Stops at the buffer's end, always NUL-terminates.
 * Returns 0, or -1 if the output was truncated. */
int jsonw_escape(char *buf, size_t size, size_t *pos, const char *s, size_t len);

/* printf-like append; returns -1 if truncated. */
int jsonw_append(char *buf, size_t size, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
