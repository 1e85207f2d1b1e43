/* runner: the one Check runner of every unit-test binary (common/ and each
 * service's tests/): all suites, one suite, or one case of it. */
#ifndef COMMON_TESTS_RUNNER_H
#define COMMON_TESTS_RUNNER_H

#include <check.h>

typedef Suite *(*unit_suite_fn)(void);

/* Runs the suites of makers (a NULL-terminated list) as "prog [suite
 * [case]]". Returns the exit status: 0 when every test ran passed, 1
 * otherwise, including a suite or case name that matched nothing (so that a
 * typo cannot pass silently), 2 for a bad command line. */
int unit_main(int argc, char **argv, const unit_suite_fn *makers);

#endif
