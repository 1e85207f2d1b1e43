/* stack: the system under test — where the broker, the database and the
 * binaries are (from the TEST_* environment), the three services started
 * once for the whole run, and helpers that need to know where they listen. */
#ifndef INTEGRATION_STACK_H
#define INTEGRATION_STACK_H

#include <stddef.h>

#include "client.h"
#include "proc.h"

enum stack_service { STACK_COMMAND, STACK_CONSUMER, STACK_QUERY, STACK_N };

struct stack_config {
	const char *bin_dir;   /* TEST_BIN_DIR (build) */
	const char *broker;    /* TEST_KAFKA_BROKER (127.0.0.1:19092) */
	const char *db_url;    /* TEST_DB_URL */
	const char *state_dir; /* TEST_STATE_DIR (.local/test): service logs */
	const char *topic;     /* TEST_TOPIC (timestamp.command.v1) */
	const char *group;     /* TEST_GROUP_ID (timestamp-consumer-service) */
	char dlq_topic[256];   /* <topic>.dlq */
	const char *otlp_endpoint; /* TEST_OTLP_ENDPOINT: "" (tracing off) or the
	                            * collector every service exports its spans to */
	const char *jaeger_url;    /* TEST_JAEGER_URL: "" or Jaeger's query API */
	int port[STACK_N];     /* 17080, 17081, 17082 */
	char url[STACK_N][64]; /* "http://127.0.0.1:<port>" */
	struct svc svc[STACK_N];
};

/* The one configuration of the run; filled by stack_load in main, before
 * Check forks the test processes, which inherit it. */
extern struct stack_config stack;

/* Fills stack from the environment. Returns 0, or -1 with errstr. */
int stack_load(char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

/* The binary name of a service: "command-service", ... */
const char *stack_name(enum stack_service which);

/* Starts one service with the run's environment (port, broker, topic,
 * database, LOG_LEVEL=DEBUG, and with TEST_OTLP_ENDPOINT the tracing
 * variables: OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_BSP_SCHEDULE_DELAY) plus extra_env (NULL or a NULL-terminated list
 * of "NAME=value" that override), logging to <state_dir>/<name>.log, and
 * waits up to ready_timeout_ms for its /ready to answer 200. Returns 0, or
 * -1 with errstr (the service is then stopped). */
int stack_start_service(enum stack_service which, const char *const *extra_env,
                        int ready_timeout_ms, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Starts a process of which on port, named name, logging to
 * <state_dir>/<log_file>, with the environment stack_start_service gives
 * (extra_env overriding), without waiting for it. Returns 0, or -1 with
 * errstr. stack_start_service uses it; tests use it for a second instance. */
int stack_spawn(struct svc *s, enum stack_service which, int port, const char *name,
                const char *log_file, const char *const *extra_env, char *errstr,
                size_t errstr_size) __attribute__((warn_unused_result));

/* stack_spawn with command-line arguments (NULL or a NULL-terminated list),
 * e.g. the consumer's --reset-offsets. */
int stack_spawn_args(struct svc *s, enum stack_service which, int port, const char *name,
                     const char *log_file, const char *const *args,
                     const char *const *extra_env, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Starts the three services (command first: it creates the topic) and waits
 * until all three /ready answer 200. Truncates their logs first. Returns 0,
 * or -1 with errstr after stopping whatever had started. */
int stack_start_all(int ready_timeout_ms, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* svc_stop of one service; see proc.h for the result. */
int stack_stop_service(enum stack_service which, int sig, int timeout_ms, long *elapsed_ms);

/* Kills (SIGKILL) whatever still runs: the last resort of the runner. */
void stack_kill_all(void);

/* Formats "<url of which><path…>" into buf; path is a printf format. */
void stack_url(char *buf, size_t size, enum stack_service which, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Polls GET /api/v1/timestamp/<id> on the query service until it answers
 * something other than 404, or timeout_ms passes. Returns 0 when it
 * answered 200 (the response is in *resp, to be cleared by the caller),
 * else -1 (*resp holds the last answer). */
int wait_record(const char *id, int timeout_ms, struct http_resp *resp)
    __attribute__((warn_unused_result));

/* Produces one valid command (a fresh id) straight into partition of the
 * topic and waits until the query service serves it: then the consumer has
 * handled every earlier message of that partition. The sentinel's id goes to
 * id_out[37] if not NULL. Returns 0, or -1 with errstr. */
int stack_sentinel(int partition, int timeout_ms, char *id_out, char *errstr,
                   size_t errstr_size) __attribute__((warn_unused_result));

#endif
