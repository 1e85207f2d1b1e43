/* fuzz: what the libFuzzer targets share: the entry point's prototype and a
 * check that reports the broken property, then aborts, so that libFuzzer
 * records the input as a crash. */
#ifndef FUZZ_FUZZ_H
#define FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                  \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: property broken: %s: ", __FILE__, \
			        __LINE__, #cond);                              \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			abort();                                               \
		}                                                              \
	} while (0)

/* The length of the well-formed UTF-8 sequence at s[0..len), 0 if none:
 * Table 3-7 of the Unicode Standard, byte ranges rather than bit masks, as
 * a reference to check common/jsonw.c's jsonw_utf8_seq against. */
static inline size_t ref_utf8_seq(const unsigned char *s, size_t len)
{
	static const struct {
		unsigned char lo0, hi0, lo1, hi1; /* first and second byte */
		size_t n;
	} table[] = {
	    {0x00, 0x7f, 0, 0, 1},       {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3},
	    {0xe1, 0xec, 0x80, 0xbf, 3}, {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3},
	    {0xf0, 0xf0, 0x90, 0xbf, 4}, {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
	};

	if (len == 0)
		return 0;
	for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++) {
		if (s[0] < table[t].lo0 || s[0] > table[t].hi0)
			continue;
		if (table[t].n > len)
			return 0;
		if (table[t].n > 1 && (s[1] < table[t].lo1 || s[1] > table[t].hi1))
			return 0;
		for (size_t k = 2; k < table[t].n; k++)
			if (s[k] < 0x80 || s[k] > 0xbf)
				return 0;
		return table[t].n;
	}
	return 0;
}

#endif
