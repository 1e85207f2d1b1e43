/* rebuild: `consumer-service --rebuild`, the blue-green rebuild. Replays the
 * topic from its start into a new table under a consumer group of its own
 * while the live consumer and query-service go on with timestamp_records,
 * then switches the tables in one transaction. */
#ifndef CONSUMER_REBUILD_H
#define CONSUMER_REBUILD_H

#include "consumer.h"

/* The session-level advisory lock a rebuild holds for its whole run (the
 * schema's is 7461736). PostgreSQL drops it with the session, so a rebuild
 * that died leaves nothing to clean up. */
#define REBUILD_LOCK_KEY 7461737

/* A partition is caught up when it is this close to its end: then the
 * switch replays the rest while the live table is locked. */
#define REBUILD_CATCHUP_MESSAGES 500

/* The switch: how long it waits for a lock (lock_timeout), how long it may
 * take the end offsets and replay up to them with the live table locked,
 * how often it tries, and the pause between tries. The live consumer's
 * INSERTs queue behind the lock from the moment it is asked for: they wait
 * at most lock + replay + lock (the renames) + the COMMIT, about 4.5 s,
 * under its statement timeout (5 s by default), so they are delayed, not
 * failed (and if one does time out, it is retried, as after any outage). */
#define REBUILD_LOCK_TIMEOUT_MS 1000
#define REBUILD_SWITCH_REPLAY_MS 2500
#define REBUILD_SWITCH_ATTEMPTS 5
#define REBUILD_SWITCH_PAUSE_MS 2000

/* The rebuild gives up (state failed) when it has made no progress for this
 * long: the database or the broker stayed away. */
#define REBUILD_STALL_S 300

/* Runs the whole rebuild with the consumer's configuration c (its group id
 * is the base of the rebuild's), printing the outcome on stdout and the
 * reason for a failure on stderr. Installs its own SIGTERM/SIGINT/SIGALRM
 * handlers. Returns the exit status: 0 when the new table is live, 1 when
 * it is not (refused, failed, or stopped: then resumable). */
int rebuild_main(const struct consumer_config *c);

#endif
