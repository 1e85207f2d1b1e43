/* drill_test: the disaster-recovery drill (scripts/dr-drill.sh, what `make
 * dr-drill` runs) against the cluster form: the services started by
 * scripts/services.sh as `make run-cluster` starts them (every broker in
 * KAFKA_BROKER, topics with RF 3, the multi-host DB_URL, DB_READ_URL on the
 * standby), then the drill — the zero-downtime rebuild and the two rebuilds
 * from the topic — must end with its verdict OK (exit status 0). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cluster.h"

#define DR_RECORDS "201"
#define DR_READERS "4"

/* Runs a shell command line with the drill's environment; returns its exit status. */
static int run(const char *what, const char *line)
{
	const char *dir = getenv("TEST_SCRIPTS_DIR"), *read_url = getenv("TEST_DB_READ_URL");
	char cmd[4096];
	int rc;

	/* The values go through the environment, not the command line. */
	setenv("BIN_DIR", stack.bin_dir, 1);
	setenv("KAFKA_BROKER", stack.broker, 1);
	setenv("KAFKA_PUBLISH_TOPIC", stack.topic, 1);
	setenv("KAFKA_CONSUMER_TOPIC", stack.topic, 1);
	setenv("KAFKA_TOPIC_REPLICATION", "3", 1);
	setenv("DB_URL", stack.db_url, 1);
	setenv("DB_READ_URL", read_url ? read_url : "", 1);
	for (int i = 0; i < STACK_N; i++) {
		static const char *const vars[STACK_N] = {"COMMAND_PORT", "CONSUMER_PORT", "QUERY_PORT"};
		char port[16];
		snprintf(port, sizeof(port), "%d", stack.port[i]);
		setenv(vars[i], port, 1);
	}
	{
		char spare[16];
		snprintf(spare, sizeof(spare), "%d", fault_second_port());
		setenv("DR_SPARE_PORT", spare, 1);
	}
	setenv("DR_RECORDS", DR_RECORDS, 1);
	setenv("DR_READERS", DR_READERS, 1);
	snprintf(cmd, sizeof(cmd), "cd '%s/..' && %s >>'%s/dr-drill-cluster.log' 2>&1",
	         dir && *dir ? dir : "scripts", line, stack.state_dir);
	rc = system(cmd);
	rc = rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
	printf("  drill: %s: exit status %d\n", what, rc);
	return rc;
}

static void teardown(void)
{
	if (run("services stopped", "scripts/services.sh stop") != 0)
		fprintf(stderr, "teardown: scripts/services.sh stop failed\n");
}

START_TEST(dr_drill)
{
	char path[1024];

	ck_assert_msg(run("services started (scripts/services.sh start)",
	                  "scripts/services.sh start") == 0,
	              "scripts/services.sh start failed (see %s/dr-drill-cluster.log)",
	              stack.state_dir);
	snprintf(path, sizeof(path), "%s/dr-drill-cluster.log", stack.state_dir);
	ck_assert_msg(run("scripts/dr-drill.sh", "scripts/dr-drill.sh") == 0,
	              "the drill failed against the cluster form: see %s", path);
	ck_assert_msg(fault_grep(path, 0, "dr-drill: ", NULL, NULL) > 0, "no drill output in %s",
	              path);
}
END_TEST

Suite *make_drill_suite(void)
{
	Suite *s = suite_create("drill");
	TCase *tc = tcase_create("dr_drill");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, dr_drill);
	suite_add_tcase(s, tc);
	return s;
}
