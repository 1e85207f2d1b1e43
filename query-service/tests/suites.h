/* suites: the query service's unit-test suites, gathered by main.c. */
#ifndef QUERY_TESTS_SUITES_H
#define QUERY_TESTS_SUITES_H

#include <check.h>

Suite *make_lookup_suite(void);
Suite *make_pool_suite(void);
Suite *make_read_suite(void);
Suite *make_feed_suite(void);

#endif
