/* cluster: shared machinery of the cluster tests (see cluster.h). */
#include "cluster.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "checks.h"

#define CLIENTS 4
#define CLIENT_PAUSE_MS 20
#define BEFORE_MS 2000 /* traffic before the fault */
#define AFTER_MS 2000  /* and after recovery */
#define ROWS_MS 90000  /* a consumer that reconnected catches up on a loaded machine */
#define STOP_TIMEOUT_MS 10000

struct fault_load cluster_load;

/* The topics are created by the services with RF 3 and min ISR 2; the
 * consumer commits offsets only for rows the standby has flushed too, so
 * that a promoted standby never lacks a row whose message is behind the
 * group's offset (database_test). */
static const char *const kafka_env[] = {"KAFKA_TOPIC_REPLICATION=3", NULL};
static const char *const consumer_env[] = {"KAFKA_TOPIC_REPLICATION=3",
                                           "CONSUMER_DURABLE_STANDBYS=1", NULL};

void cluster_start_load(void)
{
	static char read_url[1200];
	const char *v = getenv("TEST_DB_READ_URL");
	const char *query_env[] = {read_url, NULL};

	snprintf(read_url, sizeof(read_url), "DB_READ_URL=%s", v ? v : "");
	fault_start(STACK_COMMAND, kafka_env);
	fault_start(STACK_CONSUMER, consumer_env);
	fault_start(STACK_QUERY, v && *v ? query_env : NULL);
	fault_load_start(&cluster_load, CLIENTS, CLIENT_PAUSE_MS);
	proc_sleep_ms(BEFORE_MS);
}

void cluster_teardown(void)
{
	fault_load_stop(&cluster_load);
	fault_log_free(&cluster_load.log);
	for (int i = 0; i < STACK_N; i++)
		stack_stop_service((enum stack_service)i, SIGTERM, STOP_TIMEOUT_MS, NULL);
	/* kafka.sh start starts the nodes that are down and waits for all. */
	if (fault_script("kafka.sh", "start") != 0)
		fprintf(stderr, "teardown: the cluster does not come back (see %s/kafka*.log)\n",
		        stack.state_dir);
}

long cluster_script(const char *script, const char *action)
{
	const long t0 = clock_mono_ms();

	ck_assert_msg(fault_script(script, action) == 0, "scripts/%s %s failed (see %s/faults-scripts.log)",
	              script, action, stack.state_dir);
	return clock_mono_ms() - t0;
}

/* The first line that scripts/kafka.sh ARGS prints, into out ("" if none).
 * Returns its exit status. */
static int kafka_out(const char *args, char *out, size_t size)
{
	const char *dir = getenv("TEST_SCRIPTS_DIR");
	char cmd[1024];
	FILE *p;
	int rc;

	snprintf(cmd, sizeof(cmd), "'%s/kafka.sh' %s 2>>'%s/faults-scripts.log'",
	         dir && *dir ? dir : "scripts", args, stack.state_dir);
	p = popen(cmd, "r");
	ck_assert_msg(p != NULL, "popen %s", cmd);
	if (fgets(out, (int)size, p) == NULL)
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	while (fgetc(p) != EOF) /* the rest, so that the script is not cut off */
		;
	rc = pclose(p);
	return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

int cluster_leader(int partition)
{
	char args[512], out[64];
	int node;

	snprintf(args, sizeof(args), "leader '%s' %d", stack.topic, partition);
	if (kafka_out(args, out, sizeof(out)) != 0 || sscanf(out, "%d", &node) != 1 || node < 1 ||
	    node > CLUSTER_NODES)
		return -1;
	return node;
}

bool cluster_in_isr(int partition, int node)
{
	char args[512], out[64], want[8];
	char *save = NULL;

	snprintf(args, sizeof(args), "isr '%s' %d", stack.topic, partition);
	if (kafka_out(args, out, sizeof(out)) != 0)
		return false;
	snprintf(want, sizeof(want), "%d", node);
	for (char *t = strtok_r(out, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, want) == 0)
			return true;
	}
	return false;
}

/* The point from which every answer to a request sent after t was a 200,
 * and how many answers came since (*n); when the first 200 to a request
 * sent after t came (*first, -1: none yet). With every client waiting on a
 * stalled request the outage shows there, not in the point. */
static long all_200_since(long t, size_t *n, long *first)
{
	struct fault_log *l = &cluster_load.log;
	long from = t;

	*n = 0;
	*first = -1;
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->n; i++) {
		if (l->a[i].sent_ms >= t && l->a[i].status != 200 && l->a[i].sent_ms + 1 > from)
			from = l->a[i].sent_ms + 1;
		if (l->a[i].sent_ms >= t && l->a[i].status == 200 &&
		    (*first < 0 || l->a[i].answered_ms < *first))
			*first = l->a[i].answered_ms;
	}
	for (size_t i = 0; i < l->n; i++)
		*n += l->a[i].sent_ms >= from;
	pthread_mutex_unlock(&l->mu);
	return from;
}

long cluster_await_200s(long t, int run, long timeout_ms, const char *what)
{
	const long deadline = clock_mono_ms() + timeout_ms;

	for (;;) {
		size_t n;
		long first, from = all_200_since(t, &n, &first);
		if (n >= (size_t)run) {
			printf("  %s: every POST sent from %.1f s on answered 200 (%zu so far); the first "
			       "200 to a POST sent after the fault came %.1f s after it\n",
			       what, fault_secs(from - t), n, fault_secs(first - t));
			return from;
		}
		ck_assert_msg(clock_mono_ms() < deadline,
		              "%s: POSTs did not succeed again within %.0f s (%zu answers of 200 in a "
		              "row at the end)",
		              what, fault_secs(timeout_ms), n);
		proc_sleep_ms(100);
	}
}

void cluster_check_answers(const char *what, long from, long to, long recovered)
{
	size_t n_200 = 0, n_503 = 0, other = 0, during = 0, during_503 = 0, after = 0,
	       after_bad = 0, n_ids, readable;
	int other_status = 0;
	char (*ids)[UID_TEXT_SIZE];
	long rows;

	proc_sleep_ms(AFTER_MS);
	fault_load_stop(&cluster_load);
	ck_assert_msg(svc_alive(&stack.svc[STACK_COMMAND]), "%s: the command service exited (log: %s)",
	              what, stack.svc[STACK_COMMAND].log_path);
	for (size_t i = 0; i < cluster_load.log.n; i++) {
		const struct fault_answer *a = &cluster_load.log.a[i];
		if (a->status == 200)
			n_200++;
		else if (a->status == 503)
			n_503++;
		else if (other++ == 0)
			other_status = a->status;
		if (from < to && a->sent_ms >= from && a->answered_ms < to) {
			during++;
			during_503 += a->status == 503;
			ck_assert_msg(a->status != 200,
			              "%s: a 200 for a request sent %.3f s into the outage and answered "
			              "%.3f s before its end",
			              what, fault_secs(a->sent_ms - from), fault_secs(to - a->answered_ms));
		}
		if (recovered > 0 && a->sent_ms >= recovered) {
			after++;
			after_bad += a->status != 200;
		}
	}
	printf("  %s: %zu POSTs, %zu answered 200, %zu 503%s", what, cluster_load.log.n, n_200,
	       n_503, from < to ? "" : "\n");
	if (from < to)
		printf("; %zu sent and answered during the %.1f s outage, %zu of them 503\n", during,
		       fault_secs(to - from), during_503);
	ck_assert_msg(other == 0, "%s: %zu answers neither 200 nor 503 (the first: %d, 0 = none)",
	              what, other, other_status);
	ck_assert_msg(n_200 > 0, "%s: no POST answered 200", what);
	if (from < to)
		ck_assert_msg(during >= 2, "%s: only %zu requests fell into the outage", what, during);
	if (recovered > 0)
		ck_assert_msg(after_bad == 0, "%s: %zu of %zu POSTs sent after the recovery were not 200",
		              what, after_bad, after);

	ids = fault_tickets(&cluster_load.log, &n_ids);
	rows = fault_wait_rows(ids, n_ids, ROWS_MS);
	ck_assert_msg(rows == (long)n_ids, "%s: %ld rows for the %zu tickets answered 200", what, rows,
	              n_ids);
	readable = fault_count_readable(ids, n_ids);
	ck_assert_msg(readable == n_ids, "%s: %zu of %zu tickets answered 200 are readable", what,
	              readable, n_ids);
	printf("  %s: each of the %zu tickets answered 200 is one row, and readable\n", what, n_ids);
	free(ids);
}
