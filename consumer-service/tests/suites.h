/* suites: the unit-test suites of consumer-service, gathered by main.c. */
#ifndef CONSUMER_TESTS_SUITES_H
#define CONSUMER_TESTS_SUITES_H

#include <check.h>

Suite *make_sink_suite(void);
Suite *make_consumer_suite(void);
Suite *make_reset_suite(void);
Suite *make_rebuild_status_suite(void);

/* Number of rows of a static table, for tcase_add_loop_test. */
#define TABLE_LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

#endif
