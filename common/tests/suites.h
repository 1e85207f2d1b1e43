/* suites: one Check suite per area of common/, gathered by main.c. */
#ifndef COMMON_TESTS_SUITES_H
#define COMMON_TESTS_SUITES_H

#include <check.h>

Suite *make_ts_suite(void);
Suite *make_uid_suite(void);
Suite *make_msg_suite(void);
Suite *make_db_suite(void);
Suite *make_cfg_suite(void);
Suite *make_log_suite(void);
Suite *make_jsonw_suite(void);
Suite *make_http_suite(void);
Suite *make_kafka_suite(void);
Suite *make_metrics_suite(void);
Suite *make_fuzz_regress_suite(void);
Suite *make_clock_suite(void);
Suite *make_trace_suite(void);

/* Number of rows of a static table, for tcase_add_loop_test. */
#define TABLE_LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

#endif
