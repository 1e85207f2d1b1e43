/* store: read the PostgreSQL projection straight with libpq, to count the
 * rows that the query service would hide (duplicates) or take long to show. */
#ifndef INTEGRATION_STORE_H
#define INTEGRATION_STORE_H

#include <stddef.h>

/* Counts the rows of timestamp_records whose id is one of ids[0..n) (UUID
 * texts) into *count. Returns 0, or -1 with errstr. */
int store_count_ids(const char *db_url, const char *const *ids, size_t n,
                    long *count, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Counts the rows with this id. Returns 0, or -1 with errstr. */
int store_count(const char *db_url, const char *id, long *count, char *errstr,
                size_t errstr_size) __attribute__((warn_unused_result));

/* Runs sql (no parameters: fixed statements only, e.g. TRUNCATE). Returns
 * 0, or -1 with errstr. */
int store_exec(const char *db_url, const char *sql, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* The rows of sql (a SELECT with text parameters $1..$n_vals, vals), each
 * as its columns' text joined by '|' and a newline, into *text, which the
 * caller frees, and their number into *rows; in a UTC session with ISO
 * dates. Returns 0, or -1 with errstr. */
int store_query(const char *db_url, const char *sql, const char *const *vals, int n_vals,
                char **text, long *rows, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Every row of timestamp_records as "id|event_timestamp|created_at" lines
 * (PostgreSQL's UTC text, in id order) into *text, which the caller frees,
 * and their number into *rows. Returns 0, or -1 with errstr. */
int store_dump(const char *db_url, char **text, long *rows, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* The counts per minute (timestamp_counts) against the rows' GROUP BY,
 * read in one snapshot. */
struct store_counts {
	long differ;     /* minutes whose count is not the rows' (missing, extra, other) */
	long minutes;    /* rows of timestamp_counts */
	long counted;    /* the sum of their counts */
	long rows;       /* rows of timestamp_records */
	char first[160]; /* the first minute that differs, "" when none */
};

/* Fills *out. Returns 0, or -1 with errstr. */
int store_counts(const char *db_url, struct store_counts *out, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

#endif
