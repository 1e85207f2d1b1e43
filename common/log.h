/* log: JSON-lines logging to stdout, one object per line. */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Set once at start-up, before any thread logs. */
void log_setup(const char *service, enum log_level level);

/* Parse "DEBUG"/"INFO"/"WARN"/"ERROR" (any case). Returns -1 if unknown. */
int log_level_parse(const char *s, enum log_level *out);

extern enum log_level log_min_level;

/* Sets the trace id (32 hex digits; NULL or "" clears it) that every line
 * the calling thread writes from now on carries as "trace_id". */
void log_set_trace(const char *trace_id);

/* Writes one line with ts, level, service, msg and, when not NULL,
 * correlationId and command_id. One write(2) per line, so lines from
 * concurrent threads never interleave. */
void log_write(enum log_level level, const char *correlation_id,
               const char *command_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The level is checked before anything is formatted. */
#define log_at(level, cid, cmd, ...)                                       \
	do {                                                                \
		if ((level) >= log_min_level)                               \
			log_write((level), (cid), (cmd), __VA_ARGS__);      \
	} while (0)

#define log_debug(...) log_at(LOG_DEBUG, NULL, NULL, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, NULL, NULL, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, NULL, NULL, __VA_ARGS__)
#define log_error(...) log_at(LOG_ERROR, NULL, NULL, __VA_ARGS__)

/* The LOG_LEVEL parameter of every service (see cfg.h). */
#define LOG_CFG_PARAM(level_var)                                                       \
	{"LOG_LEVEL", CFG_LOG_LEVEL, &(level_var), "INFO", 0, 0, "DEBUG, INFO, WARN or ERROR"}

#endif
