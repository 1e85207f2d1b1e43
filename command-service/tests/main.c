/* main: runs the unit tests of the command service's modules, all of them
 * or one suite/case (see common/tests/runner.h).
 *
 *   build/command-service-tests                      every suite
 *   build/command-service-tests publisher waiters    one test case */
#include <stddef.h>

#include "runner.h"
#include "suites.h"

int main(int argc, char **argv)
{
	static const unit_suite_fn makers[] = {make_publisher_suite, make_api_suite, NULL};

	return unit_main(argc, argv, makers);
}
