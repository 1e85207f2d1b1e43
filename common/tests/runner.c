/* runner: the one Check runner of every unit-test binary (see runner.h). */
#include "runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int unit_main(int argc, char **argv, const unit_suite_fn *makers)
{
	const char *suite = argc > 1 ? argv[1] : NULL;
	const char *tcase = argc > 2 ? argv[2] : NULL;
	SRunner *sr;
	int run, failed;

	if (argc > 3 || (suite && (strcmp(suite, "-h") == 0 || strcmp(suite, "--help") == 0))) {
		fprintf(stderr, "usage: %s [suite [case]]   (suite: the name of a make_<name>_suite)\n",
		        argv[0]);
		return argc > 3 ? 2 : 0;
	}
	/* Code under test logs through log.c; keep the output to Check's. */
	log_setup("unit-tests", LOG_ERROR);

	sr = srunner_create(makers[0]());
	for (const unit_suite_fn *m = makers + 1; *m; m++)
		srunner_add_suite(sr, (*m)());
	srunner_run(sr, suite, tcase, CK_NORMAL);
	run = srunner_ntests_run(sr);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	if (run == 0) {
		fprintf(stderr, "no test matched suite '%s' case '%s'\n",
		        suite ? suite : "*", tcase ? tcase : "*");
		return EXIT_FAILURE;
	}
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
