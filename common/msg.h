/* msg: the Kafka message codec, the one definition of the wire format.
 *
 * value: {"command_id":"<uuid>","event_timestamp":"<RFC 3339, UTC>"}
 * key: the command id; headers: correlationId, content-type. */
#ifndef COMMON_MSG_H
#define COMMON_MSG_H

#include <stddef.h>

#include "ts.h"
#include "uid.h"

/* Values larger than this are refused by the decoder. */
#define MSG_VALUE_MAX 65536
/* Longest value msg_encode writes, with its NUL. */
#define MSG_ENCODED_MAX 128

#define MSG_HDR_CORRELATION "correlationId"
#define MSG_HDR_CONTENT_TYPE "content-type"
#define MSG_CONTENT_TYPE "application/json"

struct msg_command {
	char command_id[UID_TEXT_SIZE]; /* lowercase */
	struct ts_instant event_time;
};

/* Encodes m into buf[MSG_ENCODED_MAX], event time with all 9 digits kept.
 * Returns the length. */
size_t msg_encode(const struct msg_command *m, char *buf);

/* Decodes a message value. Unknown fields are ignored. Returns 0, or -1
 * with the reason (fit for a dead-letter header) in errstr. */
int msg_decode(const void *value, size_t len, struct msg_command *out,
               char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

#endif
