/* main: runs the unit tests of consumer-service, all of them or one
 * suite/case (build/consumer-service-tests [suite [case]]). */
#include <stddef.h>

#include "runner.h"
#include "suites.h"

int main(int argc, char **argv)
{
	static const unit_suite_fn makers[] = {make_sink_suite, make_consumer_suite, make_reset_suite,
	                                       make_rebuild_status_suite, NULL};

	return unit_main(argc, argv, makers);
}
