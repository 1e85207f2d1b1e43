/* stack: configuration of the run and the three service processes. */
#include "stack.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msg.h"
#include "topic.h"
#include "ts.h"
#include "uid.h"

struct stack_config stack;

static const char *const names[STACK_N] = {"command-service", "consumer-service",
                                           "query-service"};

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v != NULL && *v != '\0' ? v : fallback;
}

static int env_port(const char *name, int fallback, int *out, char *errstr,
                    size_t errstr_size)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (v == NULL || *v == '\0') {
		*out = fallback;
		return 0;
	}
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end != '\0' || n < 1 || n > 65535) {
		snprintf(errstr, errstr_size, "%s: not a port: '%s'", name, v);
		return -1;
	}
	*out = (int)n;
	return 0;
}

int stack_load(char *errstr, size_t errstr_size)
{
	static const char *const port_vars[STACK_N] = {"TEST_COMMAND_PORT", "TEST_CONSUMER_PORT",
	                                               "TEST_QUERY_PORT"};

	memset(&stack, 0, sizeof(stack));
	stack.bin_dir = env_or("TEST_BIN_DIR", "build");
	stack.broker = env_or("TEST_KAFKA_BROKER", "127.0.0.1:19092");
	stack.db_url = env_or("TEST_DB_URL", "postgresql://postgres@127.0.0.1:15432/postgres");
	stack.state_dir = env_or("TEST_STATE_DIR", ".local/test");
	stack.topic = env_or("TEST_TOPIC", "timestamp.command.v1");
	stack.group = env_or("TEST_GROUP_ID", "timestamp-consumer-service");
	snprintf(stack.dlq_topic, sizeof(stack.dlq_topic), "%s.dlq", stack.topic);
	stack.otlp_endpoint = env_or("TEST_OTLP_ENDPOINT", "");
	stack.jaeger_url = env_or("TEST_JAEGER_URL", "");
	for (int i = 0; i < STACK_N; i++) {
		if (env_port(port_vars[i], 17080 + i, &stack.port[i], errstr, errstr_size) != 0)
			return -1;
		snprintf(stack.url[i], sizeof(stack.url[i]), "http://127.0.0.1:%d", stack.port[i]);
		stack.svc[i].status = SVC_NOT_RUNNING;
	}
	if (mkdir(stack.state_dir, 0755) != 0 && errno != EEXIST) {
		snprintf(errstr, errstr_size, "TEST_STATE_DIR: %s: %s", stack.state_dir,
		         strerror(errno));
		return -1;
	}
	return 0;
}

const char *stack_name(enum stack_service which)
{
	return names[which];
}

void stack_url(char *buf, size_t size, enum stack_service which, const char *fmt, ...)
{
	size_t len = (size_t)snprintf(buf, size, "%s", stack.url[which]);
	va_list ap;

	if (len >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

static void log_path(enum stack_service which, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s.log", stack.state_dir, names[which]);
}

int stack_spawn(struct svc *s, enum stack_service which, int port, const char *name,
                const char *log_file, const char *const *extra_env, char *errstr,
                size_t errstr_size)
{
	return stack_spawn_args(s, which, port, name, log_file, NULL, extra_env, errstr,
	                        errstr_size);
}

int stack_spawn_args(struct svc *s, enum stack_service which, int port, const char *name,
                     const char *log_file, const char *const *args,
                     const char *const *extra_env, char *errstr, size_t errstr_size)
{
	char v[10][1200], path[1024], log[1024];
	const char *env[64];
	size_t n = 0;

	snprintf(v[0], sizeof(v[0]), "SERVER_PORT=%d", port);
	snprintf(v[1], sizeof(v[1]), "SERVER_ADDRESS=127.0.0.1");
	snprintf(v[2], sizeof(v[2]), "LOG_LEVEL=DEBUG");
	snprintf(v[3], sizeof(v[3]), "KAFKA_BROKER=%s", stack.broker);
	snprintf(v[4], sizeof(v[4]), "KAFKA_PUBLISH_TOPIC=%s", stack.topic);
	snprintf(v[5], sizeof(v[5]), "KAFKA_CONSUMER_TOPIC=%s", stack.topic);
	snprintf(v[6], sizeof(v[6]), "DB_URL=%s", stack.db_url);
	snprintf(v[7], sizeof(v[7]), "KAFKA_GROUP_ID=%s", stack.group);
	/* Tracing on: spans exported every 100 ms, so that a test finds them soon. */
	snprintf(v[8], sizeof(v[8]), "OTEL_EXPORTER_OTLP_ENDPOINT=%s", stack.otlp_endpoint);
	snprintf(v[9], sizeof(v[9]), "OTEL_BSP_SCHEDULE_DELAY=100");
	const size_t nv = *stack.otlp_endpoint != '\0' ? 10 : 8;
	for (size_t i = 0; i < nv; i++)
		env[n++] = v[i];
	/* An environment with a name twice leaves getenv's pick unspecified:
	 * an extra entry replaces the run's entry of the same name. */
	for (; extra_env != NULL && *extra_env != NULL && n < 63; extra_env++) {
		size_t nlen = strcspn(*extra_env, "=");
		for (size_t i = 0; i < n; i++) {
			if (strncmp(env[i], *extra_env, nlen + 1) == 0) {
				env[i] = env[--n];
				break;
			}
		}
		env[n++] = *extra_env;
	}
	env[n] = NULL;

	snprintf(path, sizeof(path), "%s/%s", stack.bin_dir, names[which]);
	snprintf(log, sizeof(log), "%s/%s", stack.state_dir, log_file);
	return svc_start_args(s, name, path, args, env, log, errstr, errstr_size);
}

/* Starts one of the run's services without waiting for it. */
static int spawn(enum stack_service which, const char *const *extra_env, char *errstr,
                 size_t errstr_size)
{
	char log_file[64];

	snprintf(log_file, sizeof(log_file), "%s.log", names[which]);
	return stack_spawn(&stack.svc[which], which, stack.port[which], names[which], log_file,
	                   extra_env, errstr, errstr_size);
}

/* Waits for /ready of a started service; stops it if that fails. */
static int await_ready(enum stack_service which, int timeout_ms, char *errstr,
                       size_t errstr_size)
{
	char ready[128], why[512];

	stack_url(ready, sizeof(ready), which, "/ready");
	if (wait_ready(ready, timeout_ms, &stack.svc[which], why, sizeof(why)) == 0)
		return 0;
	snprintf(errstr, errstr_size, "%s not ready after %d ms: %s (log: %s)", names[which],
	         timeout_ms, why, stack.svc[which].log_path);
	svc_stop(&stack.svc[which], SIGKILL, 1000, NULL);
	return -1;
}

int stack_start_service(enum stack_service which, const char *const *extra_env,
                        int ready_timeout_ms, char *errstr, size_t errstr_size)
{
	if (spawn(which, extra_env, errstr, errstr_size) != 0)
		return -1;
	return await_ready(which, ready_timeout_ms, errstr, errstr_size);
}

int stack_start_all(int ready_timeout_ms, char *errstr, size_t errstr_size)
{
	const long deadline = clock_mono_ms() + ready_timeout_ms;
	char log[1024];

	for (int i = 0; i < STACK_N; i++) {
		log_path((enum stack_service)i, log, sizeof(log));
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
	}
	/* The command service creates the topic that the consumer subscribes
	 * to; the consumer creates the table that the query service reads.
	 * So: the command service first, then the other two together. */
	if (stack_start_service(STACK_COMMAND, NULL, ready_timeout_ms, errstr, errstr_size) != 0)
		goto failed;
	if (spawn(STACK_CONSUMER, NULL, errstr, errstr_size) != 0 ||
	    spawn(STACK_QUERY, NULL, errstr, errstr_size) != 0)
		goto failed;
	for (int i = STACK_CONSUMER; i < STACK_N; i++) {
		long left = deadline - clock_mono_ms();
		if (await_ready((enum stack_service)i, left > 0 ? (int)left : 0, errstr,
		                errstr_size) != 0)
			goto failed;
	}
	return 0;
failed:
	stack_kill_all();
	return -1;
}

int stack_stop_service(enum stack_service which, int sig, int timeout_ms, long *elapsed_ms)
{
	return svc_stop(&stack.svc[which], sig, timeout_ms, elapsed_ms);
}

void stack_kill_all(void)
{
	for (int i = 0; i < STACK_N; i++)
		svc_stop(&stack.svc[i], SIGKILL, 2000, NULL);
}

int wait_record(const char *id, int timeout_ms, struct http_resp *resp)
{
	const long deadline = clock_mono_ms() + timeout_ms;
	char url[256];

	stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s", id);
	for (;;) {
		if (http_get(url, NULL, resp) == 0 && resp->status != 404)
			return resp->status == 200 ? 0 : -1;
		if (clock_mono_ms() >= deadline)
			return -1;
		http_resp_clear(resp);
		proc_sleep_ms(20);
	}
}

int stack_sentinel(int partition, int timeout_ms, char *id_out, char *errstr,
                   size_t errstr_size)
{
	struct msg_command m;
	char value[MSG_ENCODED_MAX];
	struct topic_out out = {.partition = partition};
	struct http_resp resp;
	int rc;

	uid_v4(m.command_id);
	m.event_time = ts_now();
	out.key = m.command_id;
	out.value = value;
	out.value_len = msg_encode(&m, value);
	out.ts_ms = msg_ts_ms(m.event_time);
	if (topic_produce(stack.broker, stack.topic, &out, 1, errstr, errstr_size) != 0)
		return -1;
	rc = wait_record(m.command_id, timeout_ms, &resp);
	if (rc != 0)
		snprintf(errstr, errstr_size, "sentinel %s in partition %d not readable in %d ms "
		         "(last status %ld)", m.command_id, partition, timeout_ms, resp.status);
	http_resp_clear(&resp);
	if (id_out != NULL)
		memcpy(id_out, m.command_id, UID_TEXT_SIZE);
	return rc;
}
