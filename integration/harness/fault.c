/* fault: shared machinery of the fault tests (see fault.h); in the harness,
 * as the cluster tests (integration/cluster/) use it too. */
#include "fault.h"

#include <check.h>
#include <curl/curl.h>
#include <libpq-fe.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "checks.h"
#include "msg.h"
#include "store.h"
#include "ts.h"

#define STOP_TIMEOUT_MS 10000
#define READY_TIMEOUT_MS 30000

static char scripts_dir[512];

/* ---- the run's environment ---- */

/* The digits after the last ':' of s (up to a '/'), into out. */
static int port_of(const char *s, char *out, size_t size)
{
	const char *colon = strrchr(s, ':');
	size_t len;

	if (colon == NULL)
		return -1;
	len = strspn(colon + 1, "0123456789");
	if (len == 0 || len >= size)
		return -1;
	memcpy(out, colon + 1, len);
	out[len] = '\0';
	return 0;
}

int fault_env_load(char *errstr, size_t errstr_size)
{
	const char *dir = getenv("TEST_SCRIPTS_DIR");
	char port[16];

	snprintf(scripts_dir, sizeof(scripts_dir), "%s", dir && *dir ? dir : "scripts");
	/* The scripts take their ports and state folder from the environment:
	 * derive them from the run's configuration when the caller did not
	 * export them (scripts/faults.sh does). */
	if (getenv("STATE_DIR") == NULL)
		setenv("STATE_DIR", stack.state_dir, 1);
	if (getenv("KAFKA_PORT") == NULL) {
		if (port_of(stack.broker, port, sizeof(port)) != 0) {
			snprintf(errstr, errstr_size, "no port in TEST_KAFKA_BROKER '%s'", stack.broker);
			return -1;
		}
		setenv("KAFKA_PORT", port, 1);
	}
	if (getenv("PG_PORT") == NULL) {
		const char *at = strrchr(stack.db_url, '@');
		if (port_of(at ? at : stack.db_url, port, sizeof(port)) != 0) {
			snprintf(errstr, errstr_size, "no port in TEST_DB_URL '%s'", stack.db_url);
			return -1;
		}
		setenv("PG_PORT", port, 1);
	}
	if (strcmp(getenv("STATE_DIR"), stack.state_dir) != 0) {
		snprintf(errstr, errstr_size, "STATE_DIR (%s) differs from TEST_STATE_DIR (%s)",
		         getenv("STATE_DIR"), stack.state_dir);
		return -1;
	}
	return 0;
}

int fault_script(const char *script, const char *action)
{
	char cmd[2048];
	int rc;

	snprintf(cmd, sizeof(cmd), "'%s/%s' %s >>'%s/faults-scripts.log' 2>&1", scripts_dir, script,
	         action, stack.state_dir);
	rc = system(cmd);
	if (rc == -1)
		return -1;
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

/* Reads up to size - 1 bytes of /proc/<pid>/<file> into buf, NUL-terminated.
 * Returns the length, or -1 when the process (or the file) is not there. */
static long proc_read(int pid, const char *file, char *buf, size_t size)
{
	char path[64];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (long)n;
}

/* What follows the name in /proc/<pid>/stat (the name may hold spaces and
 * parentheses): " S 1234 ..." (state, parent pid, ...), or NULL. */
static const char *proc_stat_fields(int pid, char *buf, size_t size)
{
	const char *p = proc_read(pid, "stat", buf, size) < 0 ? NULL : strrchr(buf, ')');
	return p != NULL && p[1] == ' ' ? p + 1 : NULL;
}

int fault_broker_pid(void)
{
	char path[1024], cmdline[4096];
	FILE *f;
	long n;
	int pid = -1;

	snprintf(path, sizeof(path), "%s/kafka.pid", stack.state_dir);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%d", &pid) != 1)
		pid = -1;
	fclose(f);
	/* Only our broker: the pid file may be stale. */
	if (pid <= 0 || (n = proc_read(pid, "cmdline", cmdline, sizeof(cmdline))) < 0)
		return -1;
	for (long i = 0; i < n; i++)
		cmdline[i] = cmdline[i] == '\0' ? ' ' : cmdline[i];
	return strstr(cmdline, "kafka.Kafka") != NULL ? pid : -1;
}

/* The state letter of a process from /proc (R, S, T, ...), or 0. */
static char proc_state(int pid)
{
	char buf[512];
	const char *p = proc_stat_fields(pid, buf, sizeof(buf));

	return p != NULL ? p[1] : 0;
}

void fault_broker_pause(bool stop)
{
	const int pid = fault_broker_pid();
	const long deadline = clock_mono_ms() + 5000;

	ck_assert_msg(pid > 0, "no broker pid in %s/kafka.pid", stack.state_dir);
	ck_assert_msg(kill(pid, stop ? SIGSTOP : SIGCONT) == 0, "kill %d: %s", pid, strerror(errno));
	/* kill() only queues the signal: wait until it took effect. */
	for (;;) {
		char st = proc_state(pid);
		if ((st == 'T') == stop)
			return;
		ck_assert_msg(clock_mono_ms() < deadline, "broker %d: state %c after %s", pid, st,
		              stop ? "SIGSTOP" : "SIGCONT");
		proc_sleep_ms(1);
	}
}

/* The parent pid of a process from /proc, or -1. */
static int proc_ppid(int pid)
{
	char buf[512];
	const char *p = proc_stat_fields(pid, buf, sizeof(buf));
	int ppid;

	return p != NULL && sscanf(p, " %*c %d", &ppid) == 1 ? ppid : -1;
}

/* The postmaster's pid (the first line of <state_dir>/pgdata/postmaster.pid),
 * or -1. */
static int db_postmaster_pid(void)
{
	char path[1024];
	FILE *f;
	int pid = -1;

	snprintf(path, sizeof(path), "%s/pgdata/postmaster.pid", stack.state_dir);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%d", &pid) != 1 || pid <= 0 || kill(pid, 0) != 0)
		pid = -1;
	fclose(f);
	return pid;
}

/* The postmaster, then its children (found once it is stopped, so that it
 * forks no new one in between) into pids; returns how many. */
static int db_pids(int *pids, int max)
{
	DIR *d;
	struct dirent *e;
	int n = 0;

	if ((pids[0] = db_postmaster_pid()) < 0)
		return 0;
	n = 1;
	if ((d = opendir("/proc")) == NULL)
		return n;
	while ((e = readdir(d)) != NULL && n < max) {
		int pid = atoi(e->d_name);
		if (pid > 0 && proc_ppid(pid) == pids[0])
			pids[n++] = pid;
	}
	closedir(d);
	return n;
}

/* Waits up to 5 s until pid is stopped (stop) or not. */
static bool wait_state(int pid, bool stop)
{
	const long deadline = clock_mono_ms() + 5000;

	for (;;) {
		char st = proc_state(pid);
		/* A process that is gone is neither, and so is one that has
		 * exited (a backend whose client just left) but that the
		 * postmaster, stopped first, cannot reap. */
		if (st == 0 || st == 'Z' || st == 'X' || (st == 'T') == stop)
			return true;
		if (clock_mono_ms() >= deadline)
			return false;
		proc_sleep_ms(1);
	}
}

void fault_db_pause(bool stop)
{
	int pids[512], n, pm = db_postmaster_pid();

	ck_assert_msg(pm > 0, "no running postmaster in %s/pgdata/postmaster.pid", stack.state_dir);
	if (stop) {
		ck_assert_msg(kill(pm, SIGSTOP) == 0, "kill %d: %s", pm, strerror(errno));
		ck_assert_msg(wait_state(pm, true), "postmaster %d not stopped", pm);
	}
	n = db_pids(pids, 512);
	for (int i = stop ? 1 : 0; i < n; i++) {
		ck_assert_msg(kill(pids[i], stop ? SIGSTOP : SIGCONT) == 0 || errno == ESRCH,
		              "kill %d: %s", pids[i], strerror(errno));
		ck_assert_msg(wait_state(pids[i], stop), "postgres process %d: state %c after %s",
		              pids[i], proc_state(pids[i]), stop ? "SIGSTOP" : "SIGCONT");
	}
}

void fault_teardown(struct svc *extra, int n_extra)
{
	const int pid = fault_broker_pid();
	int pids[512], n = db_pids(pids, 512);

	if (pid > 0 && proc_state(pid) == 'T')
		kill(pid, SIGCONT);
	/* A test that failed while the database was frozen. */
	for (int i = 0; i < n; i++) {
		if (proc_state(pids[i]) == 'T')
			kill(pids[i], SIGCONT);
	}
	if (fault_script("kafka.sh", "status") != 0 && fault_script("kafka.sh", "start") != 0)
		fprintf(stderr, "teardown: the broker does not start (see %s/kafka.log)\n",
		        stack.state_dir);
	if (fault_script("pg.sh", "status") != 0 && fault_script("pg.sh", "start") != 0)
		fprintf(stderr, "teardown: PostgreSQL does not start (see %s/postgres.log)\n",
		        stack.state_dir);
	for (int i = 0; i < n_extra; i++)
		svc_stop(&extra[i], SIGTERM, STOP_TIMEOUT_MS, NULL);
	for (int i = 0; i < STACK_N; i++)
		stack_stop_service((enum stack_service)i, SIGTERM, STOP_TIMEOUT_MS, NULL);
}

/* ---- services ---- */

void fault_start(enum stack_service which, const char *const *extra_env)
{
	char errstr[1024];

	ck_assert_msg(stack_start_service(which, extra_env, READY_TIMEOUT_MS, errstr,
	                                  sizeof(errstr)) == 0,
	              "%s", errstr);
}

void fault_start_extra(struct svc *s, enum stack_service which, int port,
                       const char *log_name, const char *const *extra_env, int ready_ms)
{
	char url[128], errstr[1024];

	ck_assert_msg(stack_spawn(s, which, port, log_name, log_name, extra_env, errstr,
	                          sizeof(errstr)) == 0,
	              "%s", errstr);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ready", port);
	if (wait_ready(url, ready_ms, s, errstr, sizeof(errstr)) != 0) {
		svc_stop(s, SIGKILL, 1000, NULL);
		ck_abort_msg("%s on port %d not ready after %d ms: %s (log: %s)", stack_name(which),
		             port, ready_ms, errstr, s->log_path);
	}
}

int fault_second_port(void)
{
	const char *v = getenv("TEST_CONSUMER2_PORT");
	return v && atoi(v) > 0 ? atoi(v) : stack.port[STACK_QUERY] + 1;
}

long fault_sigterm(struct svc *s)
{
	long elapsed = 0;
	int status = svc_stop(s, SIGTERM, STOP_TIMEOUT_MS, &elapsed);

	ck_assert_msg(status != SVC_NOT_RUNNING, "%s was not running any more (log: %s)", s->name,
	              s->log_path);
	ck_assert_msg(status != SVC_TIMED_OUT, "%s still ran %d ms after SIGTERM (killed; log: %s)",
	              s->name, STOP_TIMEOUT_MS, s->log_path);
	ck_assert_msg(status == 0, "%s exited with status %d after SIGTERM (log: %s)", s->name,
	              status, s->log_path);
	return elapsed;
}

/* ---- clients ---- */

void fault_log_init(struct fault_log *l)
{
	pthread_mutex_init(&l->mu, NULL);
	l->a = NULL;
	l->n = l->cap = 0;
}

void fault_log_add(struct fault_log *l, const struct fault_answer *a)
{
	pthread_mutex_lock(&l->mu);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct fault_answer *grown = realloc(l->a, cap * sizeof(*grown));
		if (grown == NULL) {
			pthread_mutex_unlock(&l->mu);
			return; /* the count checks then fail */
		}
		l->a = grown;
		l->cap = cap;
	}
	l->a[l->n++] = *a;
	pthread_mutex_unlock(&l->mu);
}

size_t fault_log_count(struct fault_log *l)
{
	pthread_mutex_lock(&l->mu);
	size_t n = l->n;
	pthread_mutex_unlock(&l->mu);
	return n;
}

void fault_log_free(struct fault_log *l)
{
	free(l->a);
	l->a = NULL;
	l->n = l->cap = 0;
	pthread_mutex_destroy(&l->mu);
}

static void *load_main(void *arg)
{
	struct fault_load *load = arg;
	CURL *curl = curl_easy_init();
	char url[128];
	struct http_resp resp;

	stack_url(url, sizeof(url), STACK_COMMAND, "/api/v1/timestamp");
	while (curl != NULL && !atomic_load(&load->stop)) {
		struct fault_answer a = {.sent_ms = clock_mono_ms()};
		atomic_fetch_add(&load->pending, 1);
		if (http_request(curl, "POST", url, NULL, NULL, 0, &resp) != 0) {
			a.refused = resp.curl_code == CURLE_COULDNT_CONNECT;
		} else {
			a.status = (int)resp.status;
			a.retry_after = resp.retry_after[0] != '\0';
			if (a.status == 200) {
				json_object *jobj = http_resp_json(&resp);
				const char *id = json_str(jobj, "id");
				if (is_uuid(id))
					memcpy(a.id, id, UID_TEXT_SIZE);
				else
					a.status = -200; /* a 200 without a ticket: counted as wrong */
				json_object_put(jobj);
			} else if (a.status == 503) {
				json_object *jobj = http_resp_json(&resp);
				const char *id = json_str(jobj, "id");
				if (is_uuid(id))
					memcpy(a.id, id, UID_TEXT_SIZE);
				json_object_put(jobj);
			}
		}
		a.answered_ms = clock_mono_ms();
		atomic_fetch_sub(&load->pending, 1);
		http_resp_clear(&resp);
		fault_log_add(&load->log, &a);
		proc_sleep_ms(a.status == 0 ? 50 : load->pause_ms);
	}
	if (curl != NULL)
		curl_easy_cleanup(curl);
	return NULL;
}

void fault_load_start(struct fault_load *load, int threads, int pause_ms)
{
	ck_assert_int_le(threads, 32);
	load->threads = 0;
	load->pause_ms = pause_ms;
	atomic_store(&load->stop, false);
	fault_log_init(&load->log);
	for (int i = 0; i < threads; i++) {
		ck_assert_int_eq(pthread_create(&load->tid[i], NULL, load_main, load), 0);
		load->threads++;
	}
}

void fault_load_stop(struct fault_load *load)
{
	atomic_store(&load->stop, true);
	for (int i = 0; i < load->threads; i++)
		pthread_join(load->tid[i], NULL);
	load->threads = 0;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
	bool *retry_after = userdata;

	if (size * nmemb > 12 && strncasecmp(line, "Retry-After:", 12) == 0)
		*retry_after = true;
	return size * nmemb;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

/* A fresh connection for every probe, as a load balancer's health check
 * would make: a kept-alive connection would hide a server that no longer
 * takes new ones. */
static void *probe_main(void *arg)
{
	struct fault_probe *p = arg;

	while (!atomic_load(&p->stop)) {
		struct fault_answer a = {.sent_ms = clock_mono_ms()};
		CURL *curl = curl_easy_init();
		long status = 0;

		if (curl != NULL) {
			curl_easy_setopt(curl, CURLOPT_URL, p->url);
			curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
			if (p->post)
				curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
			curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, p->timeout_ms);
			curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, p->timeout_ms);
			curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
			curl_easy_setopt(curl, CURLOPT_HEADERDATA, &a.retry_after);
			curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
			if (curl_easy_perform(curl) == CURLE_OK)
				curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
			curl_easy_cleanup(curl);
		}
		a.status = (int)status;
		a.answered_ms = clock_mono_ms();
		fault_log_add(&p->log, &a);
		for (long until = a.sent_ms + p->interval_ms;
		     !atomic_load(&p->stop) && clock_mono_ms() < until;)
			proc_sleep_ms(10);
	}
	return NULL;
}

void fault_probe_start(struct fault_probe *p, const char *url, int interval_ms,
                       long timeout_ms)
{
	snprintf(p->url, sizeof(p->url), "%s", url);
	p->interval_ms = interval_ms;
	p->timeout_ms = timeout_ms;
	atomic_store(&p->stop, false);
	fault_log_init(&p->log);
	ck_assert_int_eq(pthread_create(&p->tid, NULL, probe_main, p), 0);
	p->running = true;
}

void fault_probe_stop(struct fault_probe *p)
{
	if (!p->running)
		return;
	atomic_store(&p->stop, true);
	pthread_join(p->tid, NULL);
	p->running = false;
}

char (*fault_tickets(struct fault_log *l, size_t *n))[UID_TEXT_SIZE]
{
	char (*ids)[UID_TEXT_SIZE] = calloc(l->n + 1, UID_TEXT_SIZE);

	ck_assert_ptr_nonnull(ids);
	*n = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (l->a[i].status == 200)
			memcpy(ids[(*n)++], l->a[i].id, UID_TEXT_SIZE);
	}
	return ids;
}

long fault_wait_rows(char (*ids)[UID_TEXT_SIZE], size_t n, long timeout_ms)
{
	const char **list = calloc(n + 1, sizeof(*list));
	const long deadline = clock_mono_ms() + timeout_ms;
	char errstr[512];
	long count = 0;

	ck_assert_ptr_nonnull(list);
	for (size_t i = 0; i < n; i++)
		list[i] = ids[i];
	for (;;) {
		if (store_count_ids(stack.db_url, list, n, &count, errstr, sizeof(errstr)) != 0)
			count = -1; /* the database may be on its way back */
		if (count == (long)n || clock_mono_ms() >= deadline)
			break;
		proc_sleep_ms(200);
	}
	free(list);
	return count;
}

long fault_assert_counts(const char *when)
{
	struct store_counts c;
	char errstr[512];

	ck_assert_msg(store_counts(stack.db_url, &c, errstr, sizeof(errstr)) == 0, "counts %s: %s",
	              when, errstr);
	printf("  counts %s: %ld minutes counting %ld rows; the table holds %ld rows; %ld minutes "
	       "differ from its GROUP BY\n",
	       when, c.minutes, c.counted, c.rows, c.differ);
	ck_assert_msg(c.differ == 0, "counts %s: %ld minutes differ from the rows' GROUP BY, "
	              "the first: %s", when, c.differ, c.first);
	ck_assert_msg(c.counted == c.rows, "counts %s: %ld rows counted, %ld in the table", when,
	              c.counted, c.rows);
	return c.counted;
}

size_t fault_count_readable(char (*ids)[UID_TEXT_SIZE], size_t n)
{
	CURL *curl = curl_easy_init();
	struct http_resp resp;
	char url[256];
	size_t ok = 0;

	ck_assert_ptr_nonnull(curl);
	for (size_t i = 0; i < n; i++) {
		stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s", ids[i]);
		if (http_request(curl, "GET", url, NULL, NULL, 0, &resp) == 0 && resp.status == 200)
			ok++;
		http_resp_clear(&resp);
	}
	curl_easy_cleanup(curl);
	return ok;
}

/* ---- the topic ---- */

static void *stream_main(void *arg)
{
	struct fault_stream *s = arg;
	struct topic_out *out = calloc((size_t)s->chunk, sizeof(*out));
	char(*vals)[MSG_ENCODED_MAX] = calloc((size_t)s->chunk, MSG_ENCODED_MAX);
	int done = 0;

	if (out == NULL || vals == NULL) {
		snprintf(s->error, sizeof(s->error), "out of memory");
		goto finished;
	}
	while (done < s->total && !atomic_load(&s->stop)) {
		const long next = clock_mono_ms() + s->interval_ms;
		const int k = s->total - done < s->chunk ? s->total - done : s->chunk;
		const struct ts_instant now = ts_now();
		char errstr[512];

		for (int i = 0; i < k; i++) {
			struct msg_command m;
			uid_v4(m.command_id);
			memcpy(s->ids[done + i], m.command_id, UID_TEXT_SIZE);
			/* An event time that tells the message's place in the stream. */
			m.event_time = (struct ts_instant){.sec = 1254164592, .nsec = (done + i) * 1000};
			out[i] = (struct topic_out){.key = s->ids[done + i], .value = vals[i],
			                            .value_len = msg_encode(&m, vals[i]),
			                            .ts_ms = msg_ts_ms(now),
			                            .partition = TOPIC_ANY_PARTITION};
		}
		if (topic_produce(stack.broker, stack.topic, out, (size_t)k, errstr, sizeof(errstr)) != 0) {
			snprintf(s->error, sizeof(s->error), "after %d messages: %.400s", done, errstr);
			break;
		}
		done += k;
		atomic_store(&s->produced, done);
		while (done < s->total && !atomic_load(&s->stop) && clock_mono_ms() < next)
			proc_sleep_ms(10);
	}
finished:
	free(out);
	free(vals);
	return NULL;
}

void fault_stream_start(struct fault_stream *s, int total, int chunk, int interval_ms)
{
	s->total = total;
	s->chunk = chunk;
	s->interval_ms = interval_ms;
	s->ids = calloc((size_t)total + 1, UID_TEXT_SIZE);
	s->error[0] = '\0';
	atomic_store(&s->produced, 0);
	atomic_store(&s->stop, false);
	ck_assert_ptr_nonnull(s->ids);
	ck_assert_int_eq(pthread_create(&s->tid, NULL, stream_main, s), 0);
	s->running = true;
}

void fault_stream_join(struct fault_stream *s, bool abort)
{
	if (!s->running)
		return;
	if (abort)
		atomic_store(&s->stop, true);
	pthread_join(s->tid, NULL);
	s->running = false;
	if (!abort) {
		ck_assert_msg(s->error[0] == '\0', "producing into %s: %s", stack.topic, s->error);
		ck_assert_int_eq(atomic_load(&s->produced), s->total);
	}
}

/* ---- logs and metrics ---- */

long fault_file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

int fault_grep(const char *path, long offset, const char *needle,
               void (*fn)(const char *line, void *arg), void *arg)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t size = 0;
	int count = 0;

	if (f == NULL)
		return 0;
	if (fseek(f, offset, SEEK_SET) == 0) {
		while (getline(&line, &size, f) >= 0) {
			if (needle != NULL && strstr(line, needle) == NULL)
				continue;
			count++;
			if (fn != NULL)
				fn(line, arg);
		}
	}
	free(line);
	fclose(f);
	return count;
}

double fault_metric(const char *url, const char *series)
{
	return metric_value(url, series);
}

double fault_secs(long ms)
{
	return ms / 1000.0;
}

void fault_sql_value(const char *sql, char *out, size_t size)
{
	PGconn *conn = PQconnectdb(stack.db_url);
	PGresult *res = PQexec(conn, sql);

	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql,
	              PQstatus(conn) == CONNECTION_OK ? PQresultErrorMessage(res)
	                                              : PQerrorMessage(conn));
	snprintf(out, size, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	PQfinish(conn);
}
