/* main: runs the unit tests of common/, all of them or one suite/case.
 *
 *   build/unit-tests                 every suite
 *   build/unit-tests ts              the suite "ts"
 *   build/unit-tests ts parse_reject one test case of it */
#include <stddef.h>

#include "runner.h"
#include "suites.h"

int main(int argc, char **argv)
{
	static const unit_suite_fn makers[] = {
	    make_ts_suite,   make_uid_suite,  make_msg_suite,     make_db_suite,
	    make_cfg_suite,  make_log_suite,  make_jsonw_suite,   make_http_suite,
	    make_kafka_suite, make_metrics_suite, make_fuzz_regress_suite,
	    make_clock_suite, make_trace_suite, NULL,
	};

	return unit_main(argc, argv, makers);
}
