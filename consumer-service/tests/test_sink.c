/* test_sink: what a failed statement's SQLSTATE means for the batch. Only
 * a row's own data (classes 22 and 23) is worth dead-lettering: anything
 * else would refuse every row alike, and is waited out as an outage. */
#include <inttypes.h>
#include <string.h>

#include "sink.h"
#include "suites.h"

static const struct {
	const char *sqlstate, *what;
	enum sink_failure want;
} cases[] = {
    {NULL, "no result: the connection is gone", SINK_OUTAGE},
    {"", "an empty SQLSTATE", SINK_OUTAGE},
    {"08006", "connection_failure", SINK_OUTAGE},
    {"08001", "sqlclient_unable_to_establish_sqlconnection", SINK_OUTAGE},
    {"53300", "too_many_connections", SINK_OUTAGE},
    {"53100", "disk_full", SINK_OUTAGE},
    {"57P01", "admin_shutdown", SINK_OUTAGE},
    {"57P03", "cannot_connect_now", SINK_OUTAGE},
    {"57014", "query_canceled (statement_timeout)", SINK_OUTAGE},
    {"40001", "serialization_failure", SINK_OUTAGE},
    {"40P01", "deadlock_detected", SINK_OUTAGE},
    {"25006", "read_only_sql_transaction (a standby)", SINK_OUTAGE},
    {"42P01", "undefined_table (every row would fail)", SINK_OUTAGE},
    {"42501", "insufficient_privilege (every row would fail)", SINK_OUTAGE},
    {"58030", "io_error", SINK_OUTAGE},
    {"XX000", "internal_error", SINK_OUTAGE},
    {"2200", "a malformed SQLSTATE", SINK_OUTAGE},
    {"22008", "datetime_field_overflow", SINK_REFUSED},
    {"22007", "invalid_datetime_format", SINK_REFUSED},
    {"22P02", "invalid_text_representation", SINK_REFUSED},
    {"22001", "string_data_right_truncation", SINK_REFUSED},
    {"23514", "check_violation", SINK_REFUSED},
    {"23502", "not_null_violation", SINK_REFUSED},
    {"23503", "foreign_key_violation", SINK_REFUSED},
    {"23505", "unique_violation", SINK_REFUSED},
};

START_TEST(sqlstate_classes)
{
	ck_assert_msg(sink_classify(cases[_i].sqlstate) == cases[_i].want, "%s (%s): want %s",
	              cases[_i].sqlstate ? cases[_i].sqlstate : "NULL", cases[_i].what,
	              cases[_i].want == SINK_OUTAGE ? "an outage" : "refused as data");
}
END_TEST

static const struct {
	const char *text;
	int rc;
	uint64_t lsn;
} lsns[] = {
    {"0/0", 0, 0},
    {"16/B374D848", 0, 0x16B374D848ULL},
    {"ffffffff/ffffffff", 0, UINT64_MAX},
    {"1/a", 0, 0x10000000aULL},
    {"", -1, 0},
    {"/1", -1, 0},
    {"1/", -1, 0},
    {"1", -1, 0},
    {"1/2/3", -1, 0},
    {"0x1/2", -1, 0},
    {" 1/2", -1, 0},
    {"-1/2", -1, 0},
    {"100000000/0", -1, 0},
    {"0/100000000", -1, 0},
    {"g/0", -1, 0},
};

START_TEST(pg_lsn_text)
{
	uint64_t lsn = 12345;
	int rc = sink_parse_lsn(lsns[_i].text, &lsn);

	ck_assert_msg(rc == lsns[_i].rc, "'%s': rc %d", lsns[_i].text, rc);
	if (rc == 0)
		ck_assert_msg(lsn == lsns[_i].lsn, "'%s': %" PRIx64, lsns[_i].text, lsn);
}
END_TEST

/* The counts table that goes with a records table: the live one's, and a
 * blue-green generation's; anything else, or a name that does not fit, is
 * refused (no counts table is guessed, nothing written past the size). */
static const struct {
	const char *table;
	size_t size;
	int rc;
	const char *want;
} counts_names[] = {
    {"timestamp_records", NAMEDATALEN_MAX, 0, "timestamp_counts"},
    {"timestamp_records_g3", NAMEDATALEN_MAX, 0, "timestamp_counts_g3"},
    {"timestamp_records_g2147483647", NAMEDATALEN_MAX, 0, "timestamp_counts_g2147483647"},
    {"timestamp_records_g3", sizeof("timestamp_counts_g3"), 0, "timestamp_counts_g3"},
    {"timestamp_records_g3", sizeof("timestamp_counts_g3") - 1, -1, NULL}, /* one byte short */
    {"timestamp_records_g3", 0, -1, NULL},
    /* 63 characters: the longest name PostgreSQL keeps; 64 do not fit */
    {"timestamp_records_1234567890123456789012345678901234567890123456", NAMEDATALEN_MAX, 0,
     "timestamp_counts_1234567890123456789012345678901234567890123456"},
    {"timestamp_records_12345678901234567890123456789012345678901234567", NAMEDATALEN_MAX, -1,
     NULL},
    {"timestamp_record", NAMEDATALEN_MAX, -1, NULL},
    {"TIMESTAMP_RECORDS", NAMEDATALEN_MAX, -1, NULL},
    {"public.timestamp_records", NAMEDATALEN_MAX, -1, NULL},
    {"timestamp_counts", NAMEDATALEN_MAX, -1, NULL},
    {"", NAMEDATALEN_MAX, -1, NULL},
};

START_TEST(counts_table_of_a_records_table)
{
	char buf[NAMEDATALEN_MAX + 8];
	int rc;

	memset(buf, '#', sizeof(buf));
	rc = sink_counts_table(counts_names[_i].table, buf, counts_names[_i].size);
	ck_assert_msg(rc == counts_names[_i].rc, "'%s' in %zu bytes: rc %d", counts_names[_i].table,
	              counts_names[_i].size, rc);
	if (rc == 0)
		ck_assert_str_eq(buf, counts_names[_i].want);
	for (size_t i = counts_names[_i].size; i < sizeof(buf); i++)
		ck_assert_msg(buf[i] == '#', "'%s': byte %zu written, past the %zu given",
		              counts_names[_i].table, i, counts_names[_i].size);
}
END_TEST

Suite *make_sink_suite(void)
{
	Suite *s = suite_create("sink");
	TCase *tc = tcase_create("classify");

	tcase_add_loop_test(tc, sqlstate_classes, 0, TABLE_LEN(cases));
	suite_add_tcase(s, tc);
	tc = tcase_create("lsn");
	tcase_add_loop_test(tc, pg_lsn_text, 0, TABLE_LEN(lsns));
	suite_add_tcase(s, tc);
	tc = tcase_create("counts table");
	tcase_add_loop_test(tc, counts_table_of_a_records_table, 0, TABLE_LEN(counts_names));
	suite_add_tcase(s, tc);
	return s;
}
