/* uid: UUID text helpers: v4 tickets, v5 ids from Idempotency-Key, checks. */
#ifndef COMMON_UID_H
#define COMMON_UID_H

#include <stdbool.h>
#include <stddef.h>

/* 36 characters and a NUL. */
#define UID_TEXT_SIZE 37

/* Namespace of the UUIDv5 ids derived from an Idempotency-Key. Fixed
 * forever: changing it would give retried requests new ids. */
#define UID_IDEMPOTENCY_NAMESPACE "5b8f6c1e-3f0a-4c57-9a55-2f6a7c1d9e40"

/* True when s (len bytes) is a UUID of any version in the 8-4-4-4-12 hex
 * form, in any case. */
bool uid_valid(const char *s, size_t len);

/* A random (v4) UUID, lowercase, into out[UID_TEXT_SIZE]. */
void uid_v4(char *out);

/* The name-based SHA-1 (v5) UUID of name in namespace ns (a UUID text),
 * lowercase, into out[UID_TEXT_SIZE]. Returns 0, or -1 if ns is invalid. */
int uid_v5(const char *ns, const char *name, size_t name_len, char *out)
    __attribute__((warn_unused_result));

/* True for an Idempotency-Key: 1-255 visible ASCII characters (0x21-0x7e). */
bool uid_idempotency_key_valid(const char *s, size_t len);

/* Lowercase copy of a valid UUID text into out[UID_TEXT_SIZE]. */
void uid_normalize(const char *s, char *out);

#endif
