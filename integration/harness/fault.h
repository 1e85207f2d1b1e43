/* fault: what the fault tests share — the broker and the database under the
 * tests' control, clients that record every answer with its time, messages
 * streamed straight into the topic, and the services' logs read back.
 *
 * The fault tests run in the runner's own process (CK_NOFORK): they stop,
 * kill and restart services, which only their parent can reap. So nothing
 * here may be left running when a test ends: every start has a stop, and
 * fault_teardown puts the world back (broker resumed and running, database
 * running, services stopped) whatever state a failed test left. */
#ifndef FAULTS_FAULT_H
#define FAULTS_FAULT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proc.h"
#include "stack.h"
#include "topic.h"
#include "uid.h"

/* One HTTP exchange as a client saw it. */
struct fault_answer {
	long sent_ms;     /* clock_mono_ms() just before the request was sent */
	long answered_ms; /* ... and when the answer (or the failure) came */
	int status;       /* HTTP status, 0 when no answer (refused, reset, timeout) */
	bool refused;     /* no answer because the connection was refused */
	bool retry_after; /* a Retry-After header came with it */
	/* the ticket of a 200 from the command service, or the id a 503 from it
	 * says was tried ("" if it names none) */
	char id[UID_TEXT_SIZE];
};

/* A growing, locked list of answers. */
struct fault_log {
	pthread_mutex_t mu;
	struct fault_answer *a;
	size_t n, cap;
};

/* Clients that POST tickets to the command service until stopped, each
 * with its own keep-alive handle, pausing pause_ms between requests. */
struct fault_load {
	int threads;
	int pause_ms;
	atomic_bool stop;
	atomic_int pending; /* requests sent and not yet answered */
	pthread_t tid[32];
	struct fault_log log;
};

/* A thread that GETs (or, with post set, POSTs with no body) one URL every
 * interval_ms, on a new connection each time, until stopped. */
struct fault_probe {
	char url[256];
	bool post;
	int interval_ms;
	long timeout_ms; /* per request */
	atomic_bool stop;
	bool running;
	pthread_t tid;
	struct fault_log log;
};

/* A thread that produces total valid commands straight into the topic, in
 * chunks of chunk every interval_ms; their ids go to ids[0..total). */
struct fault_stream {
	int total, chunk, interval_ms;
	char (*ids)[UID_TEXT_SIZE]; /* allocated by fault_stream_start */
	atomic_int produced;        /* acknowledged so far */
	atomic_bool stop;
	bool running;
	pthread_t tid;
	char error[512]; /* the first failure, "" if none */
};

/* ---- the run's environment ---- */

/* Reads what the scripts need (STATE_DIR, KAFKA_PORT, PG_PORT, the scripts'
 * folder) from the environment. Returns 0, or -1 with errstr. */
int fault_env_load(char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

/* Runs "scripts/<script> <action>" with its output appended to
 * <state_dir>/faults-scripts.log. Returns its exit status. */
int fault_script(const char *script, const char *action);

/* The broker's pid (from <state_dir>/kafka.pid), or -1. */
int fault_broker_pid(void);

/* SIGSTOPs (stop=true) or SIGCONTs the broker and waits until /proc says it
 * is stopped, or running again. Asserts. */
void fault_broker_pause(bool stop);

/* SIGSTOPs (stop=true) or SIGCONTs every process of the test cluster of
 * PostgreSQL (the postmaster of <state_dir>/pgdata and all its children)
 * and waits until /proc says each took it: a frozen server, whose kernel
 * still accepts connections and acknowledges data. Asserts. */
void fault_db_pause(bool stop);

/* Puts the world back for the next test: resumes the broker and the
 * database if they are stopped, starts them if they are down, stops the
 * three services (SIGTERM, then SIGKILL) and every extra process given. */
void fault_teardown(struct svc *extra, int n_extra);

/* ---- services ---- */

/* stack_start_service, asserting success. */
void fault_start(enum stack_service which, const char *const *extra_env);

/* Starts another instance of which on port, logging to
 * <state_dir>/<log_name>, with the same environment stack_start_service
 * gives (plus extra_env), and waits up to ready_ms for its /ready. Asserts. */
void fault_start_extra(struct svc *s, enum stack_service which, int port,
                       const char *log_name, const char *const *extra_env, int ready_ms);

/* The port for a second consumer: TEST_CONSUMER2_PORT, or the query port + 1. */
int fault_second_port(void);

/* SIGTERMs a service and asserts a clean exit (status 0) within 10 s;
 * returns the time it took in ms. */
long fault_sigterm(struct svc *s);

/* ---- clients ---- */

void fault_log_init(struct fault_log *l);
void fault_log_add(struct fault_log *l, const struct fault_answer *a);
void fault_log_free(struct fault_log *l);
/* The number of answers so far (while clients still add to it). */
size_t fault_log_count(struct fault_log *l);

/* Starts/stops (joins) the ticket clients. fault_load_stop is a no-op on a
 * load that is not running. */
void fault_load_start(struct fault_load *load, int threads, int pause_ms);
void fault_load_stop(struct fault_load *load);

void fault_probe_start(struct fault_probe *p, const char *url, int interval_ms,
                       long timeout_ms);
void fault_probe_stop(struct fault_probe *p);

/* The ids of the 200 answers in l (a new array; *n its length). */
char (*fault_tickets(struct fault_log *l, size_t *n))[UID_TEXT_SIZE];

/* Waits up to timeout_ms until every one of ids[0..n) is a row, and returns
 * how many are (the last count). */
long fault_wait_rows(char (*ids)[UID_TEXT_SIZE], size_t n, long timeout_ms);

/* Asserts that timestamp_counts equals the rows' SELECT date_trunc('minute',
 * event_timestamp, 'UTC'), count(*) ... GROUP BY 1 (no minute missing,
 * extra or different; printed, when is what just happened) and returns
 * the rows counted. */
long fault_assert_counts(const char *when);

/* The first value of the answer to sql on the stack's database into
 * out[size] ("" for NULL or no row). Asserts that the statement worked. */
void fault_sql_value(const char *sql, char *out, size_t size);

/* GETs each id from the query service; returns how many answered 200. */
size_t fault_count_readable(char (*ids)[UID_TEXT_SIZE], size_t n);

/* ---- the topic ---- */

void fault_stream_start(struct fault_stream *s, int total, int chunk, int interval_ms);
/* Waits for the stream to finish (or stops it early if abort) and asserts
 * that every message was acknowledged. */
void fault_stream_join(struct fault_stream *s, bool abort);

/* ---- logs and metrics ---- */

/* The current size of a file (0 if it does not exist): an offset to read a
 * log from, so that a test looks only at lines written since. */
long fault_file_size(const char *path);

/* Calls fn(line, arg) for each line of path from offset on. Returns the
 * number of lines that contain needle (all lines if needle is NULL); fn
 * (may be NULL) sees only those. */
int fault_grep(const char *path, long offset, const char *needle,
               void (*fn)(const char *line, void *arg), void *arg);

/* The value of the Prometheus series whose line starts with series (name
 * and labels, e.g. consumer_records_total{outcome="inserted"}) at url, or -1. */
double fault_metric(const char *url, const char *series);

/* Formats milliseconds since start for messages. */
double fault_secs(long ms);

#endif
