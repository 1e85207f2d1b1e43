/* proc: start, signal and stop the service binaries under test, and wait for
 * an HTTP endpoint to answer 200.
 *
 * A service is a child of the process that called svc_start: only that
 * process can learn its exit status (waitpid). Check's fork mode runs each
 * test in a child of the runner, so a test that stops and restarts a service
 * owns the new process; it must stop it again itself, or the run must use
 * CK_FORK=no. Services get PR_SET_PDEATHSIG=SIGTERM, so they never outlive a
 * crashed runner and keep its ports. */
#ifndef INTEGRATION_PROC_H
#define INTEGRATION_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "clock.h" /* the waits of the tests: clock_mono_ms */

/* svc_stop's result when the process did not exit in time (it was then
 * killed with SIGKILL and reaped). */
#define SVC_TIMED_OUT (-1)
/* svc_stop's result when there was no process to stop, or it was not ours. */
#define SVC_NOT_RUNNING (-2)

struct svc {
	char name[32];
	char path[512];     /* the binary */
	char log_path[512]; /* stdout and stderr, appended */
	pid_t pid;          /* 0 when not running */
	int status;         /* exit status once reaped (see svc_stop), else -2 */
};

/* Starts the binary path as service name, with exactly env (a NULL-terminated
 * list of "NAME=value", may be NULL) plus PATH and the sanitizers' *_OPTIONS
 * from our own environment: nothing else leaks in from the caller's shell.
 * stdout and stderr are appended to log_path. Returns 0, or -1 with errstr
 * (the exec itself failing shows as an exit status of 127). */
int svc_start(struct svc *s, const char *name, const char *path,
              const char *const *env, const char *log_path, char *errstr,
              size_t errstr_size) __attribute__((warn_unused_result));

/* svc_start with command-line arguments: args is NULL or a NULL-terminated
 * list (at most 14) passed after the program's name. */
int svc_start_args(struct svc *s, const char *name, const char *path,
                   const char *const *args, const char *const *env, const char *log_path,
                   char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

/* Sends sig (SIGSTOP, SIGCONT, SIGKILL, ...) without waiting. Returns 0 or -1. */
int svc_signal(const struct svc *s, int sig);

/* True while the process runs (a stopped process runs). Reaps it, and
 * records its status, if it has exited. */
bool svc_alive(struct svc *s);

/* Sends sig and waits up to timeout_ms for the process to exit. Returns its
 * exit code (0-255), 128 + the signal that killed it, SVC_TIMED_OUT, or
 * SVC_NOT_RUNNING. In every case the process is gone afterwards; its
 * elapsed time to exit goes to *elapsed_ms when that is not NULL. */
int svc_stop(struct svc *s, int sig, int timeout_ms, long *elapsed_ms);

/* Polls GET url until it answers 200 or timeout_ms passes. If s is not NULL
 * and its process exits meanwhile, gives up at once. Returns 0, or -1 with
 * the last status or error in errstr. */
int wait_ready(const char *url, int timeout_ms, struct svc *s, char *errstr,
               size_t errstr_size) __attribute__((warn_unused_result));

/* Sleeps for ms milliseconds. */
void proc_sleep_ms(long ms);

#endif
