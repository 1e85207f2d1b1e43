/* cfg: configuration from the environment, one table per program,
 * validated at start. */
#ifndef COMMON_CFG_H
#define COMMON_CFG_H

#include <stddef.h>
#include <stdio.h>

enum cfg_type {
	CFG_INT,       /* long long in [min, max] -> int target */
	CFG_OPT_INT,   /* as CFG_INT when set; unset, the target keeps its value (off) */
	CFG_STRING,    /* char * (points into the environment or the default) */
	CFG_SECRET,    /* like CFG_STRING; NAME_FILE names a file holding it */
	CFG_LOG_LEVEL, /* DEBUG/INFO/WARN/ERROR -> enum log_level target */
};

struct cfg_param {
	const char *name;
	enum cfg_type type;
	void *target;
	const char *def; /* NULL: no default (empty for strings) */
	long long min, max;
	const char *help;
};

/* Reads every parameter from the environment (an empty value counts as
 * unset) into its target. Stops at the first bad value: returns -1 with
 * "NAME: reason" in errstr. Secrets read from files are malloc'd and live
 * for the rest of the process. */
int cfg_load(const struct cfg_param *params, size_t n, char *errstr,
             size_t errstr_size) __attribute__((warn_unused_result));

/* Prints a usage text listing every variable and its default. */
void cfg_usage(FILE *out, const char *prog, const char *summary,
               const struct cfg_param *params, size_t n);

/* Handles --help and --version; anything else is an error. Returns -1 when
 * the program should go on, otherwise the exit status to exit with. */
int cfg_args(int argc, char **argv, const char *prog, const char *summary,
             const struct cfg_param *params, size_t n);

#define CFG_COUNT(a) (sizeof(a) / sizeof((a)[0]))

#endif
