/*
 * test_ctlsock.c - the rig's one client of a simulated rack's control socket
 * (rig/ctlsock.c), and its two users' errors: the clock's (time) and
 * rackctl's (faults).
 *
 * A socket that is not there, the rack's "error: ..." reply, a rack that
 * stalls (SIGSTOP) and then answers late, a reply line that never ends, one
 * too long for the buffer, a kept connection the rack closed (reopened for
 * faults, never for time). Every error must name the socket's path and the
 * request. The rack is a real simrack; what simrack never does (malformed
 * replies, closing a kept connection) comes from a listening socket this
 * test serves.
 * Deadlines are short (the rack cannot answer in time: it is stopped, or
 * never sends the "\n"); no timing is asserted.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "ctlsock.h"
#include "rackctl.h"
#include "support.h"

#define SHORT_MS 300   /* a deadline the tested peer cannot meet */

static struct simrack_proc rack;
static char scratch[PATH_MAX];

static void cleanup(void)
{
	if (rack.pid > 0)
		kill(rack.pid, SIGCONT);   /* a test that failed with its rack stopped */
	if (rack.pid > 0 || *rack.dir)
		simrack_stop(&rack);
	if (*scratch)
		support_rmtree(scratch);
	rackctl_close();
}

TestSuite(ctlsock, .fini = cleanup, .timeout = 120);

static void start_rack(char *path, size_t len)
{
	static const char *const args[] = { "--virtual", NULL };
	cr_assert_eq(simrack_start_args(&rack, 1, 1, args), 0);
	cr_assert_lt((size_t)snprintf(path, len, "%s/control.sock", rack.dir), len);
}

static void assert_names(const char *err, const char *path, const char *request, const char *what)
{
	cr_assert(strstr(err, path), "the error does not name the socket %s: '%s'", path, err);
	cr_assert(strstr(err, request), "the error does not name the request '%s': '%s'", request, err);
	cr_assert(strstr(err, what), "the error does not say '%s': '%s'", what, err);
}

Test(ctlsock, a_socket_that_is_not_there_is_named_with_the_request)
{
	cr_assert_eq(support_tmpdir(scratch, sizeof scratch), 0);
	char path[PATH_MAX + 32], err[512], reply[256];
	snprintf(path, sizeof path, "%s/control.sock", scratch);
	struct ctlsock s;
	cr_assert_eq(ctlsock_init(&s, path, err, sizeof err), 0, "%s", err);
	cr_assert_eq(ctlsock_request(&s, "now", SHORT_MS, reply, sizeof reply, err, sizeof err), CTLSOCK_FAILED);
	assert_names(err, path, "'now'", "cannot connect");
	/* Faults: the reason in REPLY, naming socket and request too. */
	cr_assert_eq(rackctl_request(path, "datacap 1 off", reply, sizeof reply), -1);
	assert_names(reply, path, "'datacap 1 off'", "cannot connect");
	/* Time: no clock on a socket that is not there. */
	rig_clock *clk = NULL;
	cr_assert_eq(clock_open_rack(path, &clk, err, sizeof err), -1);
	cr_assert_null(clk);
	cr_assert(strstr(err, path) && strstr(err, "cannot connect"), "%s", err);
}

Test(ctlsock, the_racks_error_reply_is_a_refusal_and_the_connection_stays)
{
	char path[PATH_MAX + 32], err[512], reply[256];
	start_rack(path, sizeof path);
	struct ctlsock s;
	cr_assert_eq(ctlsock_init(&s, path, err, sizeof err), 0, "%s", err);
	cr_assert_eq(ctlsock_request(&s, "datacap 9 1 1", CTLSOCK_REPLY_MS, reply, sizeof reply, err, sizeof err),
		     CTLSOCK_REFUSED, "%s", reply);
	cr_assert_str_eq(reply, "error: no slot 9 (1..1)");
	assert_names(err, path, "'datacap 9 1 1'", "refused: error: no slot 9 (1..1)");
	/* The rack answered in full: the same connection serves the next one. */
	int fd = s.fd;
	cr_assert_geq(fd, 0, "the connection was closed after a refusal");
	cr_assert_eq(ctlsock_request(&s, "now", CTLSOCK_REPLY_MS, reply, sizeof reply, err, sizeof err), CTLSOCK_OK,
		     "%s", err);
	cr_assert_eq(s.fd, fd);
	long long now = -1;
	cr_assert(ctlsock_value(reply, "now", &now) && now == 0, "'%s'", reply);
	cr_assert_not(ctlsock_value(reply, "out", &now), "'%s' has no out=", reply);
	ctlsock_close(&s);
}

/* A stopped rack answers nothing by the deadline; its late answer, once it
 * runs again, must not be read as the reply to the next request. */
Test(ctlsock, a_late_reply_never_answers_the_next_request)
{
	char path[PATH_MAX + 32], err[512], reply[256], err2[512], reply2[256];
	start_rack(path, sizeof path);
	struct ctlsock s;
	cr_assert_eq(ctlsock_init(&s, path, err, sizeof err), 0, "%s", err);
	cr_assert_eq(ctlsock_connect(&s, err, sizeof err), 0, "%s", err);
	cr_assert_eq(kill(rack.pid, SIGSTOP), 0);
	int rc = ctlsock_request(&s, "now", SHORT_MS, reply, sizeof reply, err, sizeof err);
	cr_assert_eq(kill(rack.pid, SIGCONT), 0);
	cr_assert_eq(rc, CTLSOCK_FAILED, "'%s'", reply);
	assert_names(err, path, "'now'", "no reply");
	cr_assert(strstr(err, "within 300 ms"), "the deadline is not named: '%s'", err);
	int rc2 = ctlsock_request(&s, "datacap 1 off", CTLSOCK_REPLY_MS, reply2, sizeof reply2, err2, sizeof err2);
	cr_assert_eq(rc2, CTLSOCK_OK, "%s", err2);
	cr_assert_str_eq(reply2, "ok slot=1 datacap=off");
	ctlsock_close(&s);
}

/* ---- replies simrack never sends, from a socket this test writes to ---- */

/* Listens at PATH, connects S to it and returns the accepted end. */
static int peer_pair(struct ctlsock *s, char *path, size_t len, int *listener)
{
	cr_assert_eq(support_tmpdir(scratch, sizeof scratch), 0);
	cr_assert_lt((size_t)snprintf(path, len, "%s/control.sock", scratch), len);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strcpy(a.sun_path, path);
	*listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(*listener, 0);
	cr_assert_eq(bind(*listener, (struct sockaddr *)&a, sizeof a), 0, "%s", strerror(errno));
	cr_assert_eq(listen(*listener, 4), 0);
	char err[512];
	cr_assert_eq(ctlsock_init(s, path, err, sizeof err), 0, "%s", err);
	cr_assert_eq(ctlsock_connect(s, err, sizeof err), 0, "%s", err);
	int fd = accept(*listener, NULL, NULL);
	cr_assert_geq(fd, 0, "accept: %s", strerror(errno));
	return fd;
}

struct trickle {
	int fd;
	volatile int stop;
};

/* A reply that keeps coming and never ends: a byte every 10 ms, no "\n",
 * until the client gives up (at most 20 s). A client that waits for a pause
 * instead of keeping its deadline sees the connection close mid-line. */
static void *trickle_main(void *arg)
{
	struct trickle *t = arg;
	if (write(t->fd, "ok now=", 7) != 7)
		return NULL;
	for (int i = 0; i < 2000 && !__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE); i++) {
		if (send(t->fd, "5", 1, MSG_NOSIGNAL) != 1)
			break;
		usleep(10 * 1000);
	}
	shutdown(t->fd, SHUT_WR);   /* the reply ends here, without its "\n" */
	return NULL;
}

Test(ctlsock, a_reply_that_never_ends_fails_at_its_deadline)
{
	struct ctlsock s;
	char path[PATH_MAX + 32], err[512];
	static char reply[8192];   /* room for the whole trickle: only the deadline ends the wait */
	int listener;
	struct trickle t = { .fd = peer_pair(&s, path, sizeof path, &listener) };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, trickle_main, &t), 0);
	int rc = ctlsock_request(&s, "now", SHORT_MS, reply, sizeof reply, err, sizeof err);
	__atomic_store_n(&t.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	cr_assert_eq(rc, CTLSOCK_FAILED, "'%s'", reply);
	assert_names(err, path, "'now'", "did not end within 300 ms");
	cr_assert_lt(s.fd, 0, "a connection with half a reply on it is still open");
	close(t.fd);
	close(listener);
}

Test(ctlsock, a_reply_longer_than_the_buffer_is_refused_not_cut)
{
	struct ctlsock s;
	char path[PATH_MAX + 32], err[512], reply[32];
	int listener;
	int fd = peer_pair(&s, path, sizeof path, &listener);
	const char *line = "ok now=1 out=2 and much more than thirty-one bytes\n";
	cr_assert_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	cr_assert_eq(ctlsock_request(&s, "now", SHORT_MS, reply, sizeof reply, err, sizeof err), CTLSOCK_FAILED,
		     "'%s'", reply);
	assert_names(err, path, "'now'", "longer than 31 bytes");
	cr_assert_lt(s.fd, 0, "the rest of the line is still there to be read as the next reply");
	close(fd);
	close(listener);
}

/* A peer that answers one request on its first connection and closes it,
 * as a rack that restarted would, then answers on the next connection. */
struct restarter {
	int listener;
	char got[2][64];   /* the request line each connection carried */
};

static void serve_one(int fd, char *got, size_t len, const char *answer)
{
	size_t n = 0;
	char ch;
	while (n + 1 < len && read(fd, &ch, 1) == 1 && ch != '\n')
		got[n++] = ch;
	got[n] = '\0';
	if (write(fd, answer, strlen(answer)) < 0)
		got[0] = '\0';
}

static void *restarter_main(void *arg)
{
	struct restarter *r = arg;
	int a = accept(r->listener, NULL, NULL);
	if (a < 0)
		return NULL;
	serve_one(a, r->got[0], sizeof r->got[0], "ok a=1\n");
	close(a);
	int b = accept(r->listener, NULL, NULL);
	if (b < 0)
		return NULL;
	serve_one(b, r->got[1], sizeof r->got[1], "ok a=2\n");
	close(b);
	return NULL;
}

/* Faults: a kept connection the rack closed is reopened and the request
 * sent once more. Time: never (a second `next` would move time again). */
Test(ctlsock, a_kept_connection_the_rack_closed_is_reopened_for_faults_not_for_time)
{
	struct ctlsock s;
	char path[PATH_MAX + 32], err[512], reply[256];
	struct restarter r;
	int first = peer_pair(&s, path, sizeof path, &r.listener);
	memset(r.got, 0, sizeof r.got);
	/* Time: the connection closes under a request; it fails, never resent. */
	close(first);
	cr_assert_eq(ctlsock_request(&s, "next 5", SHORT_MS, reply, sizeof reply, err, sizeof err), CTLSOCK_FAILED,
		     "'%s'", reply);
	struct pollfd lp = { .fd = r.listener, .events = POLLIN };
	cr_assert_eq(poll(&lp, 1, 0), 0, "the time request was sent again on a new connection: %s", err);
	assert_names(err, path, "'next 5'", "closed the connection before replying");
	/* Faults, through rackctl's kept connection. */
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, restarter_main, &r), 0);
	int rc1 = rackctl_request(path, "datacap 1 off", reply, sizeof reply);
	char reply1[256];
	snprintf(reply1, sizeof reply1, "%s", reply);
	int rc2 = rackctl_request(path, "datacap 2 off", reply, sizeof reply);
	rackctl_close();
	shutdown(r.listener, SHUT_RDWR);   /* a peer still waiting to accept gives up */
	pthread_join(th, NULL);
	cr_assert_eq(rc1, 0, "%s", reply1);
	cr_assert_str_eq(reply1, "ok a=1");
	cr_assert_eq(rc2, 0, "not reopened after the rack closed it: %s", reply);
	cr_assert_str_eq(reply, "ok a=2");
	cr_assert_str_eq(r.got[0], "datacap 1 off");
	cr_assert_str_eq(r.got[1], "datacap 2 off", "the request was not sent again on the new connection");
	close(r.listener);
}

/* The clock's time requests go through the same client: a rack that dies
 * fails the wait with an error naming the socket and the request, and every
 * later wait fails too (time can never move again). */
Test(ctlsock, a_dead_rack_fails_every_clock_wait_naming_socket_and_request)
{
	char path[PATH_MAX + 32], err[512];
	start_rack(path, sizeof path);
	rig_clock *clk = NULL;
	cr_assert_eq(clock_open_rack(path, &clk, err, sizeof err), 0, "%s", err);
	cr_assert(clock_is_virtual(clk));
	simrack_kill(&rack);
	clock_join(clk);
	cr_assert_eq(clock_sleep_until(clk, 1000), -1, "time moved on a dead rack");
	assert_names(clock_error(clk), path, "'next 1000'", "closed the connection");
	cr_assert_eq(clock_sleep_until(clk, 2000), -1, "a later wait on a failed clock did not fail");
	cr_assert_eq(clock_wait_fd(clk, -1, 500), -1);
	clock_leave(clk);
	clock_close(clk);
}
