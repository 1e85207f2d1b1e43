/* msg: the Kafka message codec, the one definition of the wire format.
 *
 * value: {"command_id":"<uuid>","event_timestamp":"<RFC 3339, UTC>"}
 * key: the command id; headers: correlationId, content-type and, when the
 * command is traced, traceparent and tracestate (W3C trace context, of the
 * producer's span); record timestamp (CreateTime): when the command was
 * accepted, the created_at. */
#ifndef COMMON_MSG_H
#define COMMON_MSG_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "trace.h"
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

/* One command's Kafka message, as msg_produce sends it. The pointers are
 * the caller's and need to live only until msg_produce returns (librdkafka
 * copies them). */
struct msg_record {
	const char *topic;
	const char *key;   /* the command id */
	const void *value; /* msg_encode's output (or any bytes, for tests) */
	size_t value_len;
	const char *cid;   /* the correlationId header */
	/* The traceparent and tracestate headers: NULL or "" sends none. */
	const char *traceparent;
	const char *tracestate;
	int64_t ts_ms;     /* CreateTime: when the command was accepted */
	void *opaque;      /* the delivery report's rkm->_private */
};

/* The record timestamp, in ms, of a command accepted at t. */
int64_t msg_ts_ms(struct ts_instant t);

/* Produces r (key, value, headers correlationId, content-type and the trace
 * context when given, CreateTime)
 * to r->topic, copied. Returns librdkafka's answer: NO_ERROR when it was
 * queued; _QUEUE_FULL and the like leave retrying to the caller. */
rd_kafka_resp_err_t msg_produce(rd_kafka_t *rk, const struct msg_record *r)
    __attribute__((warn_unused_result));

/* Decodes a consumed message: the value into out, the record timestamp into
 * *created_at, and the correlationId header (when it is a UUID; else "")
 * into cid, which is filled even when decoding fails. Returns 0, or -1 with
 * the reason (fit for a dead-letter header) in errstr. */
int msg_decode_kafka(const rd_kafka_message_t *rkm, struct msg_command *out,
                     struct ts_instant *created_at, char cid[UID_TEXT_SIZE], char *errstr,
                     size_t errstr_size) __attribute__((warn_unused_result));

/* The trace context a consumed message carries (its traceparent and
 * tracestate headers, the last of each) into out. Returns 0, or -1 when
 * there is none or its traceparent is malformed (another producer may
 * write anything): out is then zeroed, and the message's span starts a
 * new trace. */
int msg_trace_context(const rd_kafka_message_t *rkm, struct trace_ctx *out);

#endif
