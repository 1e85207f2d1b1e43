/* feed: what the consumer writes, as it commits. One thread with its own
 * PostgreSQL connection LISTENs on channel timestamp_records (the consumer
 * notifies the batch's largest seq at each COMMIT) and reads the new rows
 * by seq; each row goes to the requests waiting for its id (Prefer: wait)
 * and into a ring of recent records that the streams follow. */
#ifndef QUERY_FEED_H
#define QUERY_FEED_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "db.h"
#include "ts.h"
#include "uid.h"

/* One record as the feed read it. */
struct feed_record {
	int64_t seq;
	char id[UID_TEXT_SIZE];
	struct ts_instant event_time;
	struct ts_instant created_at;
};

/* The columns every reader of rows by seq selects, in this order (all
 * text: seq, id, then the two times in microseconds since 1970). */
#define FEED_COLUMNS                                                                       \
	"seq, id, (extract(epoch FROM event_timestamp) * 1000000)::bigint, "             \
	"(extract(epoch FROM created_at) * 1000000)::bigint"

/* Fills *rec from row of res (selected as FEED_COLUMNS, text format).
 * Returns 0, or -1 if the row is not one. */
int feed_parse_row(const void *res, int row, struct feed_record *rec)
    __attribute__((warn_unused_result));

/* The payload of a notification that says the table was switched (a
 * blue-green rebuild): seq numbering starts again. consumer-service
 * --rebuild sends "switch:<n>", n the new table's largest seq at the
 * switch, before any later write; "switch" alone means: from its end. */
#define FEED_SWITCH "switch"

struct feed_opts {
	const char *channel; /* timestamp_records */
	int ring_size;       /* records the ring keeps (>= 2) */
	int max_waiters;     /* waiters at once (feed_wait_begin refuses more) */
	int max_streams;     /* streams at once (feed_stream_begin refuses more) */
};

/* Starts the feed thread (it connects on its own, and reconnects with
 * capped backoff). Returns 0, or -1 with errstr (out of memory, no thread). */
int feed_setup(const struct db_params *p, const struct feed_opts *o, char *errstr,
               size_t errstr_size) __attribute__((warn_unused_result));

/* Ends every waiter and stream at once (they answer and close): called
 * when the service is told to stop, before the HTTP server drains. */
void feed_stopping(void);

/* Stops the thread and frees everything; no waiter or stream may remain. */
void feed_shutdown(void);

/* ---- waiters: GET /api/v1/timestamp/{id} with Prefer: wait ---- */

struct feed_waiter {
	char id[UID_TEXT_SIZE]; /* normalized */
	bool delivered;
	struct feed_record rec; /* once delivered */
	pthread_cond_t cv;
	struct feed_waiter *next;
};

enum feed_wait_result { FEED_DELIVERED, FEED_TIMED_OUT, FEED_STOPPING };

/* Registers w for id (a valid UUID) before the caller looks the record up,
 * so that a row committed in between reaches w. Returns 0, or -1 when
 * max_waiters wait already (or the service is stopping): answer 503. */
int feed_wait_begin(struct feed_waiter *w, const char *id) __attribute__((warn_unused_result));

/* Waits until the feed delivers w's record, deadline (a clock_deadline)
 * passes, or the service stops. */
enum feed_wait_result feed_wait(struct feed_waiter *w, const struct timespec *deadline);

/* Unregisters w (after feed_wait_begin succeeded, whatever came of it). */
void feed_wait_end(struct feed_waiter *w);

/* ---- the ring that streams follow ----
 *
 * The ring holds every row with seq in (base, last], in seq order: the
 * feed appends what it reads, and once full, drops the oldest (base then
 * becomes its seq). A stream keeps its own position (the last seq it sent)
 * and takes from the ring what follows it. */

/* Admission of a stream: 0, or -1 when max_streams stream already (or the
 * service is stopping): answer 503. feed_stream_end gives the slot back. */
int feed_stream_begin(void) __attribute__((warn_unused_result));
void feed_stream_end(void);

enum feed_take_result {
	FEED_TAKEN,    /* *n records after `after` copied out (0 at the deadline) */
	FEED_BEHIND,   /* some records after `after` are no longer in the ring (or the
	                  feed has not started): read them from the table */
	FEED_RESET,    /* the table was switched: the stream ends; *reset_seq is the
	                  new position */
	FEED_CLOSING,  /* the service is stopping */
};

/* Copies up to max records with seq > after, in seq order, into out,
 * waiting until deadline for the first one. epoch is the ring's epoch the
 * stream started in (feed_epoch): a switch since then answers FEED_RESET. */
enum feed_take_result feed_take(int64_t after, unsigned epoch, struct feed_record *out,
                                int max, int *n, const struct timespec *deadline,
                                int64_t *reset_seq);

/* The ring's epoch now: it changes at each switch. */
unsigned feed_epoch(void);

/* The seq of the last record the feed read (where a live stream starts)
 * into *last. False while the feed has not read the table's end yet. */
bool feed_last(int64_t *last);

/* The ring on its own, for the unit tests: a ring of size records with
 * base; ring_push appends (seq must rise); ring_find answers as feed_take
 * without waiting. */
struct feed_ring {
	struct feed_record *r;
	int size;
	uint64_t head;    /* records appended so far; the newest is r[(head - 1) % size] */
	int64_t base;     /* the ring holds every row with seq in (base, last] */
	int64_t last;
};
int feed_ring_init(struct feed_ring *ring, int size, int64_t base)
    __attribute__((warn_unused_result));
void feed_ring_free(struct feed_ring *ring);
void feed_ring_push(struct feed_ring *ring, const struct feed_record *rec);
/* Copies up to max records with seq > after into out: returns their number,
 * or -1 when after < base (some of what follows it is gone from the ring). */
int feed_ring_after(const struct feed_ring *ring, int64_t after, struct feed_record *out,
                    int max);

/* ---- Prefer: wait ---- */

/* The wait in ms that a Prefer header value asks for (RFC 7240: a list of
 * preferences separated by commas, each token[=value] with optional
 * parameters after ';', names case-insensitive, values optionally quoted):
 * the first "wait" preference's value, a non-negative integer of seconds.
 * Returns the milliseconds (capped at max_ms), 0 when there is no wait
 * preference, or -1 when its value is not a number of seconds (RFC 7240
 * says a preference that cannot be honoured is ignored: the caller answers
 * without waiting). */
long feed_prefer_wait(const char *prefer, long max_ms);

#endif
