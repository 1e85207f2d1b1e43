/* reset: `consumer-service --reset-offsets <position> [--dry-run]`, the
 * operator's command that moves a consumer group's committed offsets (Admin
 * API) to the first message of every partition, to its end, to the first
 * message at or after an instant, or to offsets named per partition, so
 * that the group's next consumer replays from there; as
 * `kafka-consumer-groups --reset-offsets` does. */
#ifndef CONSUMER_RESET_H
#define CONSUMER_RESET_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "consumer.h"
#include "ts.h"

/* How long each broker round trip of the reset may take. */
#define RESET_TIMEOUT_MS 10000

/* The command line's syntax, for messages. */
#define RESET_USAGE                                                                   \
	"--reset-offsets earliest|latest|to-datetime=<RFC 3339>|"                          \
	"to-offset=<partition>:<offset>[,<partition>:<offset>...] [--dry-run]"

enum reset_position {
	RESET_EARLIEST,    /* each partition's first offset (its low watermark) */
	RESET_LATEST,      /* each partition's end (its high watermark): replay nothing */
	RESET_TO_DATETIME, /* the first offset whose timestamp is >= at_ms, else the end */
	RESET_TO_OFFSET,   /* the offsets named; partitions not named stay as they are */
};

struct reset_target {
	int32_t partition;
	int64_t offset;
};

/* Most partitions to-offset may name: a list typed by hand, kept in the
 * request itself (nothing to free on any path out of main). */
#define RESET_TARGETS_MAX 1024

/* What the command line asks for. */
struct reset_request {
	enum reset_position position;
	bool dry_run;
	char text[128];   /* the position as given, for the printed plan */
	int64_t at_ms;    /* RESET_TO_DATETIME: the instant, rounded up to a millisecond */
	int target_cnt;   /* RESET_TO_OFFSET: targets[0..target_cnt) */
	struct reset_target targets[RESET_TARGETS_MAX];
};

/* Recognises the reset's arguments in argv[1..argc): `--reset-offsets POS`
 * or `--reset-offsets=POS`, and `--dry-run`, in any order, nothing else.
 * Returns 0 when argv asks for no reset (neither option is there), 1 with
 * *req filled, or -1 with one line in errstr saying what is wrong. */
int reset_parse_args(int argc, char **argv, struct reset_request *req, char *errstr,
                     size_t errstr_size) __attribute__((warn_unused_result));

/* One partition of the plan. Offsets are -1 when unknown or, for `before`
 * and `after`, when the group has no committed offset there. */
struct reset_partition {
	int32_t partition;
	int64_t low, high; /* the log's first offset and the next offset to be written */
	int64_t before;    /* the group's committed offset before the reset */
	int64_t target;    /* the offset the plan sets, -1 when it leaves the partition */
	int64_t after;     /* the committed offset after the reset, as the broker reports it */
	char error[200];   /* "" unless the broker refused this partition */
};

struct reset_result {
	char group[256];      /* the effective group id (KAFKA_PROPERTIES may set group.id) */
	char state[32];       /* the group's state before the reset, e.g. "Empty" */
	int members;          /* members before the reset (0 for an idle group) */
	bool planned;         /* every partition's target is known */
	bool done;            /* the offsets were altered and read back as planned */
	int partition_cnt;
	struct reset_partition *partitions; /* partition_cnt entries, owned by the result */
};

/* Resets the committed offsets of c->group on c->topic (the consumer's own
 * configuration: brokers, KAFKA_PROPERTIES too) as req says; with
 * req->dry_run only works out the plan. Refuses (before changing anything)
 * when the group has members, and when a partition named does not exist or
 * an offset named lies outside its partition's log (low..high watermark);
 * the broker refuses as well if a member joins in the meantime. Returns 0
 * when every partition of the plan was set (or, dry, planned), or -1 with
 * the reason in errstr; res holds what was learnt either way and must be
 * released with reset_result_free. Never logs and never exits. */
int reset_offsets(const struct consumer_config *c, const struct reset_request *req,
                  struct reset_result *res, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Prints the plan, one line per partition (committed offset, the new one,
 * the log's range and the messages the group's next consumer replays) and a
 * summary line: what would be done (dry run), or what was. */
void reset_result_print(const struct reset_result *res, const struct reset_request *req,
                        const char *topic, FILE *out);

/* Frees what res owns; a zeroed or freed result is a no-op. */
void reset_result_free(struct reset_result *res);

#endif
