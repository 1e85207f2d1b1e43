/* proc: the service processes under test (fork/exec, signals, exit status). */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

extern char **environ;

/* Variables passed on from our own environment to every service. */
static const char *const passed_on[] = {
    "PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS", NULL,
};

void proc_sleep_ms(long ms)
{
	struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

static int decode_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return SVC_NOT_RUNNING;
}

/* Copies the NULL-terminated src (may be NULL) to dst[n..], NULL-terminated
 * within cap entries. Returns 0, or -1 when it does not fit. */
static int append_list(const char **dst, size_t n, size_t cap, const char *const *src)
{
	for (; src != NULL && *src != NULL; src++) {
		if (n + 1 >= cap)
			return -1;
		dst[n++] = *src;
	}
	dst[n] = NULL;
	return 0;
}

int svc_start(struct svc *s, const char *name, const char *path,
              const char *const *env, const char *log_path, char *errstr,
              size_t errstr_size)
{
	return svc_start_args(s, name, path, NULL, env, log_path, errstr, errstr_size);
}

int svc_start_args(struct svc *s, const char *name, const char *path,
                   const char *const *args, const char *const *env, const char *log_path,
                   char *errstr, size_t errstr_size)
{
	const char *envp[128], *argv[16];
	size_t n = 0;
	int fd;
	pid_t pid, parent = getpid();

	memset(s, 0, sizeof(*s));
	s->status = SVC_NOT_RUNNING;
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->path, sizeof(s->path), "%s", path);
	snprintf(s->log_path, sizeof(s->log_path), "%s", log_path);

	if (access(path, X_OK) != 0) {
		snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* Everything the child needs is prepared here: after fork it only
	 * calls async-signal-safe functions. */
	for (const char *const *p = passed_on; *p != NULL; p++) {
		for (char **e = environ; *e != NULL; e++) {
			size_t len = strlen(*p);
			if (strncmp(*e, *p, len) == 0 && (*e)[len] == '=')
				envp[n++] = *e;
		}
	}
	argv[0] = path;
	if (append_list(envp, n, sizeof(envp) / sizeof(envp[0]), env) != 0 ||
	    append_list(argv, 1, sizeof(argv) / sizeof(argv[0]), args) != 0) {
		snprintf(errstr, errstr_size, "%s: too many arguments or environment variables", name);
		return -1;
	}

	fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(errstr, errstr_size, "%s: %s", log_path, strerror(errno));
		return -1;
	}
	fflush(NULL); /* or the child would flush our buffered output again */
	pid = fork();
	if (pid < 0) {
		snprintf(errstr, errstr_size, "fork: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		sigset_t none;

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent) /* the parent died before prctl */
			_exit(126);
		setpgid(0, 0); /* a terminal's Ctrl-C goes to the runner, which stops us */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execve(path, (char *const *)argv, (char *const *)envp);
		_exit(127);
	}
	close(fd);
	s->pid = pid;
	return 0;
}

int svc_signal(const struct svc *s, int sig)
{
	if (s->pid <= 0)
		return -1;
	return kill(s->pid, sig);
}

bool svc_alive(struct svc *s)
{
	int wstatus;
	pid_t r;

	if (s->pid <= 0)
		return false;
	r = waitpid(s->pid, &wstatus, WNOHANG);
	if (r == 0)
		return true;
	if (r == s->pid)
		s->status = decode_status(wstatus);
	/* r < 0 (ECHILD): not ours (started in another process): say gone. */
	s->pid = 0;
	return false;
}

int svc_stop(struct svc *s, int sig, int timeout_ms, long *elapsed_ms)
{
	const long started = clock_mono_ms();
	int wstatus;
	pid_t r;

	if (elapsed_ms != NULL)
		*elapsed_ms = 0;
	if (!svc_alive(s))
		return SVC_NOT_RUNNING;
	if (kill(s->pid, sig) != 0)
		return SVC_NOT_RUNNING;
	if (sig != SIGCONT && sig != SIGKILL)
		kill(s->pid, SIGCONT); /* a stopped process would never see sig */
	for (;;) {
		r = waitpid(s->pid, &wstatus, WNOHANG);
		if (r == s->pid) {
			s->status = decode_status(wstatus);
			break;
		}
		if (r < 0) {
			s->status = SVC_NOT_RUNNING;
			break;
		}
		if (clock_mono_ms() - started >= timeout_ms) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &wstatus, 0);
			s->status = SVC_TIMED_OUT;
			break;
		}
		proc_sleep_ms(10);
	}
	if (elapsed_ms != NULL)
		*elapsed_ms = clock_mono_ms() - started;
	s->pid = 0;
	return s->status;
}

int wait_ready(const char *url, int timeout_ms, struct svc *s, char *errstr,
               size_t errstr_size)
{
	const long deadline = clock_mono_ms() + timeout_ms;
	struct http_resp resp;

	snprintf(errstr, errstr_size, "no answer");
	for (;;) {
		if (s != NULL && !svc_alive(s)) {
			snprintf(errstr, errstr_size, "%s exited with status %d (see %s)", s->name,
			         s->status, s->log_path);
			return -1;
		}
		if (http_request(NULL, "GET", url, NULL, NULL, 0, &resp) == 0) {
			if (resp.status == 200) {
				http_resp_clear(&resp);
				return 0;
			}
			snprintf(errstr, errstr_size, "%ld %.200s", resp.status,
			         resp.body ? resp.body : "");
		} else {
			snprintf(errstr, errstr_size, "%s", resp.errstr);
		}
		http_resp_clear(&resp);
		if (clock_mono_ms() >= deadline)
			return -1;
		proc_sleep_ms(100);
	}
}
