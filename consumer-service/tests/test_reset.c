/* test_reset: the command line of `consumer-service --reset-offsets`: every
 * position, --dry-run in either place, and each kind of bad input refused
 * with one line naming what is wrong (main.c then exits 2); and the plan it
 * prints: messages to replay = end - new offset, where a partition left
 * unchanged starts from its committed offset (or the log's start). */
#include <stdlib.h>
#include <string.h>

#include "reset.h"
#include "suites.h"

#define MAX_ARGS 6

/* A command line (after the program's name) and what it should give. */
static const struct {
	const char *args[MAX_ARGS]; /* NULL-terminated */
	int rc;                     /* reset_parse_args's answer */
	enum reset_position position;
	bool dry_run;
	int64_t at_ms;
	const char *targets; /* "p:o,p:o" as parsed back, for to-offset */
	const char *error;   /* a part of the error line, for rc -1 */
} cases[] = {
    {{NULL}, 0, 0, false, 0, NULL, NULL},
    {{"--help", NULL}, 0, 0, false, 0, NULL, NULL},
    {{"--verify", NULL}, 0, 0, false, 0, NULL, NULL},
    {{"--reset-offsets", "earliest", NULL}, 1, RESET_EARLIEST, false, 0, NULL, NULL},
    {{"--reset-offsets=earliest", NULL}, 1, RESET_EARLIEST, false, 0, NULL, NULL},
    {{"--reset-offsets", "latest", "--dry-run", NULL}, 1, RESET_LATEST, true, 0, NULL, NULL},
    {{"--dry-run", "--reset-offsets=latest", NULL}, 1, RESET_LATEST, true, 0, NULL, NULL},
    {{"--reset-offsets", "to-datetime=2009-09-28T19:03:12Z", NULL}, 1, RESET_TO_DATETIME,
     false, 1254164592000LL, NULL, NULL},
    /* an offset, and a fraction below a millisecond rounded up: the first
     * record at or after 21:03:12.0005+02:00 is at .001 or later */
    {{"--reset-offsets", "to-datetime=2009-09-28T21:03:12.0005+02:00", NULL}, 1,
     RESET_TO_DATETIME, false, 1254164592001LL, NULL, NULL},
    {{"--reset-offsets", "to-datetime=2009-09-28T19:03:12.999000001Z", NULL}, 1,
     RESET_TO_DATETIME, false, 1254164593000LL, NULL, NULL},
    /* before 1970: Kafka reads negative times as special offsets */
    {{"--reset-offsets", "to-datetime=0001-01-01T00:00:00Z", NULL}, 1, RESET_TO_DATETIME,
     false, 0, NULL, NULL},
    {{"--reset-offsets", "to-offset=0:5", NULL}, 1, RESET_TO_OFFSET, false, 0, "0:5", NULL},
    {{"--reset-offsets", "to-offset=3:0,0:9223372036854775807,2147483647:1", "--dry-run",
      NULL},
     1, RESET_TO_OFFSET, true, 0, "3:0,0:9223372036854775807,2147483647:1", NULL},

    {{"--reset-offsets", NULL}, -1, 0, false, 0, NULL, "needs a position"},
    {{"--reset-offsets=", NULL}, -1, 0, false, 0, NULL, "needs a position"},
    {{"--reset-offsets", "", NULL}, -1, 0, false, 0, NULL, "needs a position"},
    {{"--reset-offsets", "earliest", "--dry-run", "--dry-run", NULL}, -1, 0, false, 0, NULL,
     "--dry-run is given twice"},
    {{"--dry-run", NULL}, -1, 0, false, 0, NULL, "--dry-run needs --reset-offsets"},
    {{"--reset-offsets", "earliest", "--reset-offsets", "latest", NULL}, -1, 0, false, 0, NULL,
     "--reset-offsets is given twice"},
    {{"--reset-offsets", "Earliest", NULL}, -1, 0, false, 0, NULL, "unknown position 'Earliest'"},
    {{"--reset-offsets", "to-datetime", NULL}, -1, 0, false, 0, NULL,
     "unknown position 'to-datetime'"},
    {{"--reset-offsets", "--dry-run", NULL}, -1, 0, false, 0, NULL,
     "unknown position '--dry-run'"},
    {{"--reset-offsets", "earliest", "now", NULL}, -1, 0, false, 0, NULL,
     "unexpected argument 'now'"},
    {{"--reset-offsets", "earliest", "--verify", NULL}, -1, 0, false, 0, NULL,
     "unexpected argument '--verify'"},
    {{"--reset-offsetsearliest", NULL}, -1, 0, false, 0, NULL,
     "unexpected argument '--reset-offsetsearliest'"},
    {{"--reset-offsets", "to-datetime=", NULL}, -1, 0, false, 0, NULL,
     "to-datetime: '' is not an RFC 3339 date-time"},
    {{"--reset-offsets", "to-datetime=2009-09-28", NULL}, -1, 0, false, 0, NULL,
     "to-datetime: '2009-09-28' is not an RFC 3339 date-time"},
    {{"--reset-offsets", "to-datetime=2009-02-29T00:00:00Z", NULL}, -1, 0, false, 0, NULL,
     "is not an RFC 3339 date-time"},
    {{"--reset-offsets", "to-datetime=2009-09-28T19:03:12", NULL}, -1, 0, false, 0, NULL,
     "is not an RFC 3339 date-time"},
    {{"--reset-offsets", "to-offset=", NULL}, -1, 0, false, 0, NULL,
     "to-offset: '' is not <partition>:<offset>"},
    {{"--reset-offsets", "to-offset=0", NULL}, -1, 0, false, 0, NULL,
     "to-offset: '0' is not <partition>:<offset>"},
    {{"--reset-offsets", "to-offset=0:1,", NULL}, -1, 0, false, 0, NULL,
     "to-offset: '' is not <partition>:<offset>"},
    {{"--reset-offsets", "to-offset=0:1,,1:2", NULL}, -1, 0, false, 0, NULL,
     "to-offset: '' is not <partition>:<offset>"},
    {{"--reset-offsets", "to-offset=:5", NULL}, -1, 0, false, 0, NULL,
     "partition '' is not a number"},
    {{"--reset-offsets", "to-offset=-1:5", NULL}, -1, 0, false, 0, NULL,
     "partition '-1' is not a number from 0 to 2147483647"},
    {{"--reset-offsets", "to-offset=2147483648:5", NULL}, -1, 0, false, 0, NULL,
     "partition '2147483648' is not a number from 0 to 2147483647"},
    {{"--reset-offsets", "to-offset=+1:5", NULL}, -1, 0, false, 0, NULL,
     "partition '+1' is not a number"},
    {{"--reset-offsets", "to-offset=1:", NULL}, -1, 0, false, 0, NULL,
     "offset '' of partition 1 is not a number"},
    {{"--reset-offsets", "to-offset=1:-5", NULL}, -1, 0, false, 0, NULL,
     "offset '-5' of partition 1 is not a number from 0 to 9223372036854775807"},
    {{"--reset-offsets", "to-offset=1:9223372036854775808", NULL}, -1, 0, false, 0, NULL,
     "offset '9223372036854775808' of partition 1 is not a number"},
    {{"--reset-offsets", "to-offset=1:5x", NULL}, -1, 0, false, 0, NULL,
     "offset '5x' of partition 1 is not a number"},
    {{"--reset-offsets", "to-offset=1: 5", NULL}, -1, 0, false, 0, NULL,
     "offset ' 5' of partition 1"},
    {{"--reset-offsets", "to-offset=1:5:6", NULL}, -1, 0, false, 0, NULL,
     "offset '5:6' of partition 1"},
    {{"--reset-offsets", "to-offset=1:5,0:2,1:7", NULL}, -1, 0, false, 0, NULL,
     "to-offset: partition 1 is named twice"},
};

/* The targets of req as "p:o,p:o". */
static void targets_text(const struct reset_request *req, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < req->target_cnt && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%d:%lld", i ? "," : "",
		                         (int)req->targets[i].partition,
		                         (long long)req->targets[i].offset);
}

START_TEST(arguments)
{
	char *argv[MAX_ARGS + 1] = {"consumer-service"};
	struct reset_request req;
	char errstr[256] = "", got[256];
	int argc = 1, rc;

	for (int i = 0; cases[_i].args[i] != NULL; i++)
		argv[argc++] = (char *)cases[_i].args[i];
	rc = reset_parse_args(argc, argv, &req, errstr, sizeof(errstr));
	ck_assert_msg(rc == cases[_i].rc, "case %d (%s ...): %d, want %d (%s)", _i,
	              argc > 1 ? argv[1] : "no arguments", rc, cases[_i].rc, errstr);
	if (rc < 0) {
		ck_assert_msg(strstr(errstr, cases[_i].error) != NULL, "case %d: '%s' lacks '%s'", _i,
		              errstr, cases[_i].error);
		ck_assert_msg(strchr(errstr, '\n') == NULL, "case %d: more than one line: %s", _i,
		              errstr);
		return;
	}
	if (rc == 0)
		return;
	ck_assert_int_eq(req.position, cases[_i].position);
	ck_assert_int_eq(req.dry_run, cases[_i].dry_run);
	if (req.position == RESET_TO_DATETIME)
		ck_assert_int_eq(req.at_ms, cases[_i].at_ms);
	targets_text(&req, got, sizeof(got));
	ck_assert_str_eq(got, cases[_i].targets ? cases[_i].targets : "");
}
END_TEST

/* A list of RESET_TARGETS_MAX partitions is taken, one more is refused. */
START_TEST(to_offset_names_at_most_the_limit)
{
	static char list[RESET_TARGETS_MAX * 16 + 32];
	static struct reset_request req;
	char *argv[] = {"consumer-service", "--reset-offsets", list, NULL};
	char errstr[256] = "";
	size_t used = (size_t)snprintf(list, sizeof(list), "to-offset=");

	for (int p = 0; p < RESET_TARGETS_MAX; p++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%d:%d", p ? "," : "", p, p);
	ck_assert_int_eq(reset_parse_args(3, argv, &req, errstr, sizeof(errstr)), 1);
	ck_assert_int_eq(req.target_cnt, RESET_TARGETS_MAX);
	ck_assert_int_eq(req.targets[RESET_TARGETS_MAX - 1].partition, RESET_TARGETS_MAX - 1);
	snprintf(list + used, sizeof(list) - used, ",%d:0", RESET_TARGETS_MAX);
	ck_assert_int_eq(reset_parse_args(3, argv, &req, errstr, sizeof(errstr)), -1);
	ck_assert_str_eq(errstr, "to-offset: 1025 partitions named, at most 1024 can be");
}
END_TEST

/* The plan of a to-offset reset of partitions 1 and 3 of four, printed. */
START_TEST(plan_counts_what_the_group_replays)
{
	struct reset_partition parts[] = {
	    /* partition, low, high, before, target, after */
	    {0, 0, 10, 12, -1, -1, ""},  /* not named, committed past the end (a topic made
	                                    anew): nothing to replay, not -2 */
	    {1, 5, 10, 9, 6, 6, ""},     /* back to 6: replays 6 to 9 */
	    {2, 3, 7, -1, -1, -1, ""},   /* not named, nothing committed: from the start */
	    {3, 0, 4, 2, 4, 4, ""},      /* set to the end: replays nothing */
	};
	struct reset_result res = {.group = "g", .state = "Empty", .planned = true, .done = true,
	                           .partition_cnt = 4, .partitions = parts};
	struct reset_request req = {.position = RESET_TO_OFFSET, .text = "to-offset=1:6,3:4"};
	char *text = NULL, want[512];
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	ck_assert_ptr_nonnull(out);
	reset_result_print(&res, &req, "t", out);
	fclose(out);
	ck_assert_msg(strstr(text, "group g, topic t (4 partitions), group state Empty, "
	                           "to-offset=1:6,3:4\n") != NULL,
	              "%s", text);
	snprintf(want, sizeof(want), "  %9d %12s %12s %12d %12d %12d\n", 0, "12", "unchanged", 0,
	         10, 0);
	ck_assert_msg(strstr(text, want) != NULL, "no \"%s\" in\n%s", want, text);
	snprintf(want, sizeof(want), "  %9d %12s %12s %12d %12d %12d\n", 1, "9", "6", 5, 10, 4);
	ck_assert_msg(strstr(text, want) != NULL, "no \"%s\" in\n%s", want, text);
	snprintf(want, sizeof(want), "  %9d %12s %12s %12d %12d %12d\n", 2, "none", "unchanged",
	         3, 7, 4);
	ck_assert_msg(strstr(text, want) != NULL, "no \"%s\" in\n%s", want, text);
	snprintf(want, sizeof(want), "  %9d %12s %12s %12d %12d %12d\n", 3, "2", "4", 0, 4, 0);
	ck_assert_msg(strstr(text, want) != NULL, "no \"%s\" in\n%s", want, text);
	ck_assert_msg(strstr(text, "reset-offsets: 2 of 4 partitions set; the group's next "
	                           "consumer replays 8 messages\n") != NULL,
	              "%s", text);
	free(text);

	/* the same, dry: only the words change */
	req.dry_run = true;
	res.done = false;
	text = NULL;
	out = open_memstream(&text, &size);
	ck_assert_ptr_nonnull(out);
	reset_result_print(&res, &req, "t", out);
	fclose(out);
	ck_assert_msg(strstr(text, "reset-offsets (dry run): group g") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "dry run, nothing changed: 2 of 4 partitions would be set; "
	                           "the group's next consumer would replay 8 messages\n") != NULL,
	              "%s", text);
	free(text);
}
END_TEST

/* Nothing is printed before the plan is known (the reset stopped early). */
START_TEST(no_plan_prints_nothing)
{
	struct reset_result res = {.group = "g"};
	struct reset_request req = {.position = RESET_EARLIEST, .text = "earliest"};
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	ck_assert_ptr_nonnull(out);
	reset_result_print(&res, &req, "t", out);
	fclose(out);
	ck_assert_uint_eq(size, 0);
	free(text);
}
END_TEST

Suite *make_reset_suite(void)
{
	Suite *s = suite_create("reset");
	TCase *tc = tcase_create("arguments");

	tcase_add_loop_test(tc, arguments, 0, TABLE_LEN(cases));
	tcase_add_test(tc, to_offset_names_at_most_the_limit);
	suite_add_tcase(s, tc);
	tc = tcase_create("plan");
	tcase_add_test(tc, plan_counts_what_the_group_replays);
	tcase_add_test(tc, no_plan_prints_nothing);
	suite_add_tcase(s, tc);
	return s;
}
