/* log: JSON-lines logging to stdout, one object per line. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "jsonw.h"
#include "ts.h"

enum log_level log_min_level = LOG_INFO;
static const char *log_service = "unknown";
static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
/* The calling thread's trace id (see log_set_trace), "" when none: a copy,
 * so that the caller's buffer may go away. */
static __thread char log_trace[33];

void log_setup(const char *service, enum log_level level)
{
	log_service = service;
	log_min_level = level;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "WARNING") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -1;
}

void log_set_trace(const char *trace_id)
{
	snprintf(log_trace, sizeof(log_trace), "%s", trace_id ? trace_id : "");
}

void log_write(enum log_level level, const char *correlation_id,
               const char *command_id, const char *fmt, ...)
{
	char msg[2048], line[4096];
	const struct ts_instant now = ts_now();
	const time_t sec = (time_t)now.sec;
	struct tm tm;
	size_t pos = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	gmtime_r(&sec, &tm);
	jsonw_append(line, sizeof(line), &pos,
	             "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\","
	             "\"level\":\"%s\",\"service\":\"%s\",\"msg\":\"",
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	             tm.tm_min, tm.tm_sec, (long)(now.nsec / 1000000),
	             level_names[level], log_service);
	/* Leave room for the ids, the trace id and the closing brace. */
	jsonw_escape(line, sizeof(line) - 208, &pos, msg, (size_t)-1);
	jsonw_append(line, sizeof(line), &pos, "\"");
	if (correlation_id) {
		jsonw_append(line, sizeof(line), &pos, ",\"correlationId\":\"");
		jsonw_escape(line, sizeof(line) - 128, &pos, correlation_id, (size_t)-1);
		jsonw_append(line, sizeof(line), &pos, "\"");
	}
	if (command_id) {
		jsonw_append(line, sizeof(line), &pos, ",\"command_id\":\"");
		jsonw_escape(line, sizeof(line) - 48, &pos, command_id, (size_t)-1);
		jsonw_append(line, sizeof(line), &pos, "\"");
	}
	if (log_trace[0] != '\0') {
		jsonw_append(line, sizeof(line), &pos, ",\"trace_id\":\"");
		jsonw_escape(line, sizeof(line) - 4, &pos, log_trace, (size_t)-1);
		jsonw_append(line, sizeof(line), &pos, "\"");
	}
	jsonw_append(line, sizeof(line), &pos, "}\n");
	/* A log line that cannot be written has nowhere else to go. */
	if (write(STDOUT_FILENO, line, pos) < 0)
		return;
}
