/* run: what the two test runners (integration-tests, fault-tests) share:
 * the command line, the stack's configuration, and running Check suites. */
#ifndef INTEGRATION_RUN_H
#define INTEGRATION_RUN_H

#include <check.h>

typedef Suite *(*run_suite_fn)(void);

/* Reads "prog [SUITE [CASE]]" into *suite and *tcase (NULL when absent),
 * loads the stack (stack_load) and starts libcurl. Returns 0, or the exit
 * status to end with (2) after a message on stderr. */
int run_setup(const char *prog, int argc, char **argv, const char **suite, const char **tcase)
    __attribute__((warn_unused_result));

/* Runs the suites of makers (NULL-terminated) that suite and tcase select
 * (NULL: all), with fork_status. Returns the number of failed tests; a
 * selection that matched nothing counts as one, so that a typo cannot
 * pass. */
int run_suites(const char *prog, const run_suite_fn *makers, const char *suite,
               const char *tcase, enum fork_status fork_status);

#endif
