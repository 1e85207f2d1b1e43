/* cfg: configuration from the environment, one table per program. */
#include "cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#ifndef TS_VERSION
#define TS_VERSION "dev"
#endif

static const char *env_value(const char *name)
{
	const char *v = getenv(name);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Reads a whole small file into a new string, minus trailing line ends. */
static char *read_secret_file(const char *path, char *why, size_t why_size)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len;

	if (f == NULL) {
		snprintf(why, why_size, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(4097);
	if (buf == NULL) {
		snprintf(why, why_size, "out of memory");
		goto done;
	}
	len = fread(buf, 1, 4097, f);
	if (ferror(f) || len > 4096) {
		snprintf(why, why_size, "cannot read %s (or larger than 4 KiB)", path);
		free(buf);
		buf = NULL;
		goto done;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
done:
	fclose(f);
	return buf;
}

static int load_one(const struct cfg_param *p, char *why, size_t why_size)
{
	const char *v = env_value(p->name);

	if (p->type == CFG_SECRET) {
		char file_var[128];
		const char *path;
		snprintf(file_var, sizeof(file_var), "%s_FILE", p->name);
		path = env_value(file_var);
		if (path != NULL && v != NULL) {
			snprintf(why, why_size, "set either %s or %s, not both", p->name,
			         file_var);
			return -1;
		}
		if (path != NULL) {
			char *secret = read_secret_file(path, why, why_size);
			if (secret == NULL)
				return -1;
			*(const char **)p->target = secret;
			return 0;
		}
	}
	if (v == NULL)
		v = p->def;
	if (v == NULL && p->type == CFG_OPT_INT)
		return 0;
	if (v == NULL && (p->type == CFG_INT || p->type == CFG_LOG_LEVEL)) {
		snprintf(why, why_size, "must be set");
		return -1;
	}
	switch (p->type) {
	case CFG_STRING:
	case CFG_SECRET:
		*(const char **)p->target = v != NULL ? v : "";
		return 0;
	case CFG_LOG_LEVEL:
		if (log_level_parse(v, p->target) != 0) {
			snprintf(why, why_size, "'%s' is not one of DEBUG, INFO, WARN, ERROR", v);
			return -1;
		}
		return 0;
	case CFG_INT:
	case CFG_OPT_INT: {
		char *end;
		long long n;
		errno = 0;
		n = strtoll(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0') {
			snprintf(why, why_size, "'%s' is not an integer", v);
			return -1;
		}
		if (n < p->min || n > p->max) {
			snprintf(why, why_size, "%lld is out of range [%lld, %lld]", n,
			         p->min, p->max);
			return -1;
		}
		*(int *)p->target = (int)n;
		return 0;
	}
	}
	snprintf(why, why_size, "unknown parameter type");
	return -1;
}

int cfg_load(const struct cfg_param *params, size_t n, char *errstr,
             size_t errstr_size)
{
	char why[256];

	for (size_t i = 0; i < n; i++) {
		if (load_one(&params[i], why, sizeof(why)) != 0) {
			snprintf(errstr, errstr_size, "%s: %s", params[i].name, why);
			return -1;
		}
	}
	return 0;
}

void cfg_usage(FILE *out, const char *prog, const char *summary,
               const struct cfg_param *params, size_t n)
{
	fprintf(out, "Usage: %s [--help] [--version]\n\n%s\n\n", prog, summary);
	fprintf(out, "Configuration (environment variables):\n");
	for (size_t i = 0; i < n; i++) {
		const struct cfg_param *p = &params[i];
		fprintf(out, "  %-24s %s", p->name, p->help);
		if (p->def != NULL)
			fprintf(out, " (default: %s)", p->def);
		else if (p->type == CFG_OPT_INT)
			fprintf(out, " (default: off)");
		if (p->type == CFG_SECRET)
			fprintf(out, "; or %s_FILE naming a file that holds it", p->name);
		fputc('\n', out);
	}
}

int cfg_args(int argc, char **argv, const char *prog, const char *summary,
             const struct cfg_param *params, size_t n)
{
	if (argc < 2)
		return -1;
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		cfg_usage(stdout, prog, summary, params, n);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("%s %s\n", prog, TS_VERSION);
		return 0;
	}
	fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", prog, argv[1]);
	return 2;
}
