/* message: a fresh command message as command-service writes it (codec,
 * key, correlationId header, record timestamp), for the bench programs that
 * write into the topic directly (produce, produce-latency). */
#ifndef BENCH_MESSAGE_H
#define BENCH_MESSAGE_H

#include "msg.h"
#include "ts.h"
#include "uid.h"

struct bench_message {
	struct msg_command m;
	char cid[UID_TEXT_SIZE];
	char value[MSG_ENCODED_MAX];
};

/* Fills bm with a new command accepted now and returns its record for
 * msg_produce (which points into bm). */
static inline struct msg_record bench_message_new(struct bench_message *bm, const char *topic,
                                                  void *opaque)
{
	const struct ts_instant now = ts_now();

	uid_v4(bm->m.command_id);
	uid_v4(bm->cid);
	bm->m.event_time = now;
	return (struct msg_record){.topic = topic,
	                           .key = bm->m.command_id,
	                           .value = bm->value,
	                           .value_len = msg_encode(&bm->m, bm->value),
	                           .cid = bm->cid,
	                           .ts_ms = msg_ts_ms(now),
	                           .opaque = opaque};
}

#endif
