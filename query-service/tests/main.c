/* main: runs the query service's unit tests, all of them or one suite/case.
 *
 *   build/query-service-tests                  every suite
 *   build/query-service-tests lookup           the suite "lookup"
 *   build/query-service-tests lookup batching  one test case of it */
#include <stddef.h>

#include "runner.h"
#include "suites.h"

int main(int argc, char **argv)
{
	static const unit_suite_fn makers[] = {make_lookup_suite, make_pool_suite, make_read_suite,
	                                       make_feed_suite, NULL};

	return unit_main(argc, argv, makers);
}
