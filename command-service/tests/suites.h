/* suites: the Check suites of the command service's own modules. */
#ifndef COMMAND_TESTS_SUITES_H
#define COMMAND_TESTS_SUITES_H

#include <check.h>

Suite *make_publisher_suite(void);
Suite *make_api_suite(void);

#endif
