/*
 * test_power.c - drivers/modbus_link.c, power_rd60xx.c and relay_boards.c
 * against a real libmodbus TCP server.
 *
 * Each test runs its own server in a thread of the test process, listening
 * on 127.0.0.1 port 0 so the kernel hands out a free port: Criterion runs
 * tests in parallel processes and they must not collide. The server holds a
 * plain register/coil mapping, so a test sets the device's state by writing
 * the mapping and checks the driver's writes by reading it.
 *
 * No test measures time. Response timeouts are shortened only so that the
 * tests expecting silence end sooner.
 */
#include "modbus_link.h"
#include "power.h"
#include "relay.h"
#include "support.h"

#include <criterion/criterion.h>
#include <modbus.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a Modbus TCP server in a thread ---- */

struct server {
	modbus_t *ctx;
	modbus_mapping_t *map;
	int listen_fd;
	int port;
	int unit;             /* answers only this unit, like a real bus */
	int drop_after;       /* close the connection after N replies (0: never) */
	int hold_reg;         /* a register writes do not change (0: none), */
	uint16_t hold_val;    /* held at this value: a supply that will not take a set point */
	atomic_bool stop;
	atomic_int accepts;
	pthread_t thread;
	char transport[64];
};

/* Answers requests on S's connected context until stop or a read error
 * (client gone). */
static void serve_loop(struct server *s)
{
	uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
	int hdr = modbus_get_header_length(s->ctx);
	int served = 0;

	while (!atomic_load(&s->stop)) {
		int rc = modbus_receive(s->ctx, q);
		if (rc == -1 && errno == ETIMEDOUT)
			continue; /* indication timeout: look at the stop flag */
		if (rc == -1)
			break;    /* client closed or reset */
		if (rc == 0 || q[hdr - 1] != s->unit)
			continue; /* another unit's request: stay silent */
		modbus_reply(s->ctx, q, rc, s->map);
		if (s->hold_reg)
			s->map->tab_registers[s->hold_reg] = s->hold_val;
		if (s->drop_after && ++served == s->drop_after)
			break;
	}
}

static void serve_connection(struct server *s, int fd)
{
	modbus_set_socket(s->ctx, fd);
	serve_loop(s);
	modbus_set_socket(s->ctx, -1);
	close(fd);
}

static void *serve(void *arg)
{
	struct server *s = arg;
	while (!atomic_load(&s->stop)) {
		struct pollfd p = { .fd = s->listen_fd, .events = POLLIN };
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept(s->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		atomic_fetch_add(&s->accepts, 1);
		serve_connection(s, fd);
	}
	return NULL;
}

/* Starts a server for UNIT with NREGS holding registers and 16 coils. */
static void server_start(struct server *s, int unit, int nregs)
{
	memset(s, 0, sizeof *s);
	s->unit = unit;
	/* Port 0: the kernel picks a free port at bind; read it back below. */
	s->ctx = modbus_new_tcp("127.0.0.1", 0);
	cr_assert_not_null(s->ctx, "modbus_new_tcp: %s", modbus_strerror(errno));
	s->map = modbus_mapping_new(16, 0, nregs, 0);
	cr_assert_not_null(s->map, "modbus_mapping_new: %s", modbus_strerror(errno));
	s->listen_fd = modbus_tcp_listen(s->ctx, 1);
	cr_assert(s->listen_fd >= 0, "modbus_tcp_listen: %s", modbus_strerror(errno));
	struct sockaddr_in a;
	socklen_t alen = sizeof a;
	cr_assert_eq(getsockname(s->listen_fd, (struct sockaddr *)&a, &alen), 0);
	s->port = ntohs(a.sin_port);
	snprintf(s->transport, sizeof s->transport, "tcp://127.0.0.1:%d", s->port);
	modbus_set_indication_timeout(s->ctx, 0, 100000);
	cr_assert_eq(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
	modbus_free(s->ctx);
	modbus_mapping_free(s->map);
}

/* A server holding a Riden map (registers 0..18 and more) with MODEL_ID. */
static void riden_start(struct server *s, uint16_t model_id)
{
	server_start(s, 1, 100);
	s->map->tab_registers[0] = model_id;
}

static struct power_dev *power_open_ok(struct server *s, int unit)
{
	const struct power_driver *drv = power_driver_find("rd60xx");
	cr_assert_not_null(drv);
	struct power_dev *d = NULL;
	char err[512];
	int rc = drv->open(s->transport, unit, 0, &d, err, sizeof err);
	cr_assert_eq(rc, POWER_OK, "open: %s", err);
	cr_assert_not_null(d);
	return d;
}

#define assert_has(text, part) \
	cr_assert(strstr((text), (part)) != NULL, "expected \"%s\" in: %s", (part), (text))

/* ---- RD60xx scaling ---- */

static void check_scaling(uint16_t model, double v, uint16_t raw_v, double a, uint16_t raw_a)
{
	struct server s;
	riden_start(&s, model);
	struct power_dev *d = power_open_ok(&s, 1);
	cr_assert_eq(d->driver->set_voltage(d, v), POWER_OK, "%s", power_error(d));
	cr_assert_eq(d->driver->set_current(d, a), POWER_OK, "%s", power_error(d));
	cr_expect_eq(s.map->tab_registers[8], raw_v, "model %u: V-SET raw %u", model,
		     s.map->tab_registers[8]);
	cr_expect_eq(s.map->tab_registers[9], raw_a, "model %u: I-SET raw %u", model,
		     s.map->tab_registers[9]);
	d->driver->close(d);
	server_stop(&s);
}

/* RD6006: V/100, I/1000. */
Test(power, rd6006_set_scaling) { check_scaling(60062, 12.00, 1200, 1.500, 1500); }
/* RD6012: V/100, I/100 (a wrong table would write 1500 and ask for 15 A). */
Test(power, rd6012_set_scaling) { check_scaling(60121, 12.00, 1200, 1.50, 150); }
/* RD6006P: V/1000, I/10000. */
Test(power, rd6006p_set_scaling) { check_scaling(60065, 12.000, 12000, 1.5000, 15000); }

/* Rounding, not truncation: 4.35 * 100 is 434.99999999999994 in binary. */
Test(power, set_voltage_rounds)
{
	struct server s;
	riden_start(&s, 60062);
	struct power_dev *d = power_open_ok(&s, 1);
	cr_assert_eq(d->driver->set_voltage(d, 4.35), POWER_OK, "%s", power_error(d));
	cr_expect_eq(s.map->tab_registers[8], 435);
	d->driver->close(d);
	server_stop(&s);
}

/* Values a register cannot hold are refused, not wrapped, and nothing is written. */
Test(power, set_out_of_range_refused)
{
	struct server s;
	riden_start(&s, 60062);
	s.map->tab_registers[8] = 500;
	struct power_dev *d = power_open_ok(&s, 1);
	cr_expect_eq(d->driver->set_voltage(d, -1.0), POWER_ERR_ARG);
	assert_has(power_error(d), "out of range");
	cr_expect_eq(d->driver->set_voltage(d, 700.0), POWER_ERR_ARG);
	cr_expect_eq(d->driver->set_current(d, NAN), POWER_ERR_ARG);
	cr_expect_eq(s.map->tab_registers[8], 500);
	d->driver->close(d);
	server_stop(&s);
}

Test(power, output_on_off_writes_reg18)
{
	struct server s;
	riden_start(&s, 60062);
	struct power_dev *d = power_open_ok(&s, 1);
	cr_assert_eq(d->driver->output(d, true), POWER_OK, "%s", power_error(d));
	cr_expect_eq(s.map->tab_registers[18], 1);
	cr_assert_eq(d->driver->output(d, false), POWER_OK, "%s", power_error(d));
	cr_expect_eq(s.map->tab_registers[18], 0);
	d->driver->close(d);
	server_stop(&s);
}

Test(power, status_decodes)
{
	struct server s;
	riden_start(&s, 60062);
	uint16_t *r = s.map->tab_registers;
	r[8] = 1200; r[9] = 1500; r[10] = 1199; r[11] = 250; r[14] = 2412;
	r[16] = 2; r[17] = 1; r[18] = 1;
	struct power_dev *d = power_open_ok(&s, 1);
	struct power_status st;
	cr_assert_eq(d->driver->status(d, &st), POWER_OK, "%s", power_error(d));
	cr_expect_float_eq(st.v_set, 12.00, 1e-9);
	cr_expect_float_eq(st.i_set, 1.500, 1e-9);
	cr_expect_float_eq(st.v_out, 11.99, 1e-9);
	cr_expect_float_eq(st.i_out, 0.250, 1e-9);
	cr_expect_float_eq(st.v_in, 24.12, 1e-9);
	cr_expect_eq(st.protection, POWER_PROT_OCP);
	cr_expect_eq(st.mode, POWER_MODE_CC);
	cr_expect(st.output_on);
	cr_expect_eq(st.model_id, 60062);

	r[16] = 1; r[17] = 0; r[18] = 0;
	cr_assert_eq(d->driver->status(d, &st), POWER_OK, "%s", power_error(d));
	cr_expect_eq(st.protection, POWER_PROT_OVP);
	cr_expect_eq(st.mode, POWER_MODE_CV);
	cr_expect(!st.output_on);

	r[16] = 0;
	cr_assert_eq(d->driver->status(d, &st), POWER_OK, "%s", power_error(d));
	cr_expect_eq(st.protection, POWER_PROT_NONE);
	d->driver->close(d);
	server_stop(&s);
}

/* ---- failures ---- */

/* The server serves unit 1 only; unit 7 hears silence, like on a real bus. */
Test(power, wrong_unit_times_out)
{
	struct server s;
	riden_start(&s, 60062);
	struct power_dev *d = NULL;
	char err[512];
	int rc = power_driver_find("rd60xx")->open(s.transport, 7, 100, &d, err, sizeof err);
	cr_assert_eq(rc, POWER_ERR_TIMEOUT, "rc %d: %s", rc, err);
	cr_assert_null(d);
	assert_has(err, s.transport);
	assert_has(err, "unit 7");
	assert_has(err, "register 0");
	assert_has(err, "no answer");
	server_stop(&s);
}

/* Registers 0..11 only: the status read (0..18) runs off the end. */
Test(power, exception_names_code_and_register)
{
	struct server s;
	server_start(&s, 1, 12);
	s.map->tab_registers[0] = 60062;
	struct power_dev *d = power_open_ok(&s, 1);
	struct power_status st;
	cr_assert_eq(d->driver->status(d, &st), POWER_ERR_EXCEPTION, "%s", power_error(d));
	assert_has(power_error(d), "illegal data address");
	assert_has(power_error(d), "registers 0..18");
	assert_has(power_error(d), "unit 1");
	/* Writing past the end is refused the same way. */
	cr_assert_eq(d->driver->output(d, true), POWER_ERR_EXCEPTION);
	assert_has(power_error(d), "register 18");
	d->driver->close(d);
	server_stop(&s);
}

Test(power, link_exception_code)
{
	struct server s;
	server_start(&s, 1, 12);
	modbus_link *l;
	char err[512];
	cr_assert_eq(modbus_link_open(s.transport, 1, &l, err, sizeof err), MODBUS_LINK_OK, "%s", err);
	uint16_t v;
	cr_assert_eq(modbus_link_read_registers(l, 200, 1, &v), MODBUS_LINK_ERR_EXCEPTION);
	cr_expect_eq(modbus_link_exception(l), 2);
	assert_has(modbus_link_error(l), "register 200");
	assert_has(modbus_link_error(l), "illegal data address");
	/* A good request afterwards works and clears the exception. */
	cr_assert_eq(modbus_link_read_registers(l, 0, 1, &v), MODBUS_LINK_OK, "%s", modbus_link_error(l));
	cr_expect_eq(modbus_link_exception(l), 0);
	modbus_link_close(l);
	server_stop(&s);
}

/* A port that is bound but not listening: nobody can take it meanwhile,
 * and a connect to it is refused. */
Test(power, refused_names_transport)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t alen = sizeof a;
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	char transport[64], err[512];
	snprintf(transport, sizeof transport, "tcp://127.0.0.1:%d", ntohs(a.sin_port));
	struct power_dev *d = NULL;
	int rc = power_driver_find("rd60xx")->open(transport, 1, 0, &d, err, sizeof err);
	cr_assert_eq(rc, POWER_ERR_CONNECT, "rc %d: %s", rc, err);
	cr_assert_null(d);
	assert_has(err, transport);
	assert_has(err, "refused");
	close(fd);
}

Test(power, unknown_model_refused)
{
	struct server s;
	riden_start(&s, 12345);
	struct power_dev *d = NULL;
	char err[512];
	int rc = power_driver_find("rd60xx")->open(s.transport, 1, 0, &d, err, sizeof err);
	cr_assert_eq(rc, POWER_ERR_MODEL, "rc %d: %s", rc, err);
	cr_assert_null(d);
	assert_has(err, "12345");
	assert_has(err, "unit 1");
	server_stop(&s);
}

/* The server drops the connection after each reply; the link reconnects
 * once per lost connection and the caller sees only successes. */
Test(power, reconnects_after_lost_connection)
{
	struct server s;
	riden_start(&s, 60062);
	s.drop_after = 1;
	struct power_dev *d = power_open_ok(&s, 1);
	cr_assert_eq(d->driver->set_voltage(d, 5.0), POWER_OK, "%s", power_error(d));
	cr_assert_eq(d->driver->output(d, true), POWER_OK, "%s", power_error(d));
	cr_expect_eq(s.map->tab_registers[8], 500);
	cr_expect_eq(s.map->tab_registers[18], 1);
	cr_expect_geq(atomic_load(&s.accepts), 3);
	d->driver->close(d);
	server_stop(&s);
}

Test(power, bad_transports_rejected)
{
	static const char *bad[] = {
		"tcp://x", "serial:/dev/x", "rtu:/dev/x@", "tcp://:502", "tcp://h:0",
		"tcp://h:70000", "tcp://h:12ab", "rtu:@9600", "rtu:/dev/x", "",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		modbus_link *l = (modbus_link *)&bad; /* must be reset to NULL */
		char err[512] = "";
		int rc = modbus_link_open(bad[i], 1, &l, err, sizeof err);
		cr_expect_eq(rc, MODBUS_LINK_ERR_ARG, "\"%s\": rc %d: %s", bad[i], rc, err);
		cr_expect_null(l, "\"%s\"", bad[i]);
		cr_expect(strstr(err, "bad transport") && strstr(err, bad[i]),
			  "\"%s\": message: %s", bad[i], err);
	}
	/* Through a device table the same message reaches the caller. */
	struct power_dev *d = NULL;
	char err[512] = "";
	cr_expect_eq(power_driver_find("rd60xx")->open("serial:/dev/x", 1, 0, &d, err, sizeof err),
		     POWER_ERR_ARG);
	assert_has(err, "unknown scheme");
}

Test(power, bad_unit_rejected)
{
	modbus_link *l;
	char err[512];
	cr_expect_eq(modbus_link_open("tcp://127.0.0.1:1502", 256, &l, err, sizeof err),
		     MODBUS_LINK_ERR_ARG);
	assert_has(err, "unit id 256");
	cr_expect_eq(modbus_link_open("rtu:/dev/null@9600", 0, &l, err, sizeof err),
		     MODBUS_LINK_ERR_ARG);
	assert_has(err, "unit id 0");
}

Test(power, driver_tables_found_by_name)
{
	cr_expect_not_null(power_driver_find("rd60xx"));
	cr_expect_null(power_driver_find("rd6006"));
	cr_expect_null(power_driver_find(NULL));
	cr_expect_not_null(relay_driver_find("coil"));
	cr_expect_not_null(relay_driver_find("register"));
	cr_expect_null(relay_driver_find("coils"));
}

/* ---- relay boards ---- */

static struct relay_dev *relay_open_ok(struct server *s, const char *family)
{
	const struct relay_driver *drv = relay_driver_find(family);
	cr_assert_not_null(drv);
	struct relay_dev *d = NULL;
	char err[512];
	cr_assert_eq(drv->open(s->transport, 1, 0, &d, err, sizeof err), RELAY_OK, "%s", err);
	return d;
}

Test(power, coil_board_set_get)
{
	struct server s;
	server_start(&s, 1, 16);
	struct relay_dev *d = relay_open_ok(&s, "coil");
	bool on = true;
	cr_assert_eq(d->driver->get(d, 3, &on), RELAY_OK, "%s", relay_error(d));
	cr_expect(!on);
	cr_assert_eq(d->driver->set(d, 3, true), RELAY_OK, "%s", relay_error(d));
	cr_expect_eq(s.map->tab_bits[3], 1);
	cr_expect_eq(s.map->tab_bits[2], 0);
	cr_expect_eq(s.map->tab_bits[4], 0);
	cr_assert_eq(d->driver->get(d, 3, &on), RELAY_OK, "%s", relay_error(d));
	cr_expect(on);
	cr_assert_eq(d->driver->set(d, 3, false), RELAY_OK, "%s", relay_error(d));
	cr_expect_eq(s.map->tab_bits[3], 0);
	cr_assert_eq(d->driver->get(d, 3, &on), RELAY_OK, "%s", relay_error(d));
	cr_expect(!on);
	/* Coil 40 is outside the 16-coil mapping. */
	cr_expect_eq(d->driver->set(d, 40, true), RELAY_ERR_EXCEPTION);
	assert_has(relay_error(d), "coil 40");
	assert_has(relay_error(d), "illegal data address");
	cr_expect_eq(d->driver->set(d, -1, true), RELAY_ERR_ARG);
	d->driver->close(d);
	server_stop(&s);
}

Test(power, register_board_set_get)
{
	struct server s;
	server_start(&s, 1, 16);
	struct relay_dev *d = relay_open_ok(&s, "register");
	bool on;
	/* Channel 2 is register 3. */
	cr_assert_eq(d->driver->set(d, 2, true), RELAY_OK, "%s", relay_error(d));
	cr_expect_eq(s.map->tab_registers[3], 0x0200);
	cr_expect_eq(s.map->tab_registers[2], 0);
	cr_assert_eq(d->driver->get(d, 2, &on), RELAY_OK, "%s", relay_error(d));
	cr_expect(on);
	cr_assert_eq(d->driver->set(d, 2, false), RELAY_OK, "%s", relay_error(d));
	cr_expect_eq(s.map->tab_registers[3], 0x0100);
	cr_assert_eq(d->driver->get(d, 2, &on), RELAY_OK, "%s", relay_error(d));
	cr_expect(!on);
	/* The 0/1 read-back of the Eletechsup manuals. */
	s.map->tab_registers[3] = 0x0001;
	cr_assert_eq(d->driver->get(d, 2, &on), RELAY_OK, "%s", relay_error(d));
	cr_expect(on);
	s.map->tab_registers[3] = 0x0000;
	cr_assert_eq(d->driver->get(d, 2, &on), RELAY_OK, "%s", relay_error(d));
	cr_expect(!on);
	/* Anything else is reported, not guessed. */
	s.map->tab_registers[3] = 0x0042;
	cr_expect_eq(d->driver->get(d, 2, &on), RELAY_ERR_IO);
	assert_has(relay_error(d), "0x0042");
	assert_has(relay_error(d), "register 3");
	d->driver->close(d);
	server_stop(&s);
}

Test(power, relay_wrong_unit_times_out)
{
	struct server s;
	server_start(&s, 1, 16);
	struct relay_dev *d = NULL;
	char err[512];
	cr_assert_eq(relay_driver_find("coil")->open(s.transport, 9, 100, &d, err, sizeof err),
		     RELAY_OK, "%s", err);
	cr_expect_eq(d->driver->set(d, 0, true), RELAY_ERR_TIMEOUT);
	assert_has(relay_error(d), "unit 9");
	assert_has(relay_error(d), "coil 0");
	cr_expect_eq(s.map->tab_bits[0], 0);
	d->driver->close(d);
	server_stop(&s);
}

/* ---- RTU across a pty pair ---- */

struct pty_pair {
	pid_t socat;
	char dir[64], a[96], b[96];
};

/* socat joins two ptys DIR/a and DIR/b; it dies with this test process. */
static void pty_pair_start(struct pty_pair *p)
{
	snprintf(p->dir, sizeof p->dir, "/tmp/trackrig-power-XXXXXX");
	cr_assert_not_null(mkdtemp(p->dir), "mkdtemp: %s", strerror(errno));
	snprintf(p->a, sizeof p->a, "%s/a", p->dir);
	snprintf(p->b, sizeof p->b, "%s/b", p->dir);
	char arg_a[128], arg_b[128];
	snprintf(arg_a, sizeof arg_a, "pty,raw,echo=0,link=%s", p->a);
	snprintf(arg_b, sizeof arg_b, "pty,raw,echo=0,link=%s", p->b);
	pid_t parent = getpid();
	p->socat = fork();
	cr_assert(p->socat >= 0, "fork: %s", strerror(errno));
	if (p->socat == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1); /* the test died before prctl took effect */
		execlp("socat", "socat", arg_a, arg_b, (char *)NULL);
		_exit(127);
	}
	/* A guard, not a measurement: socat makes the links within ms. */
	struct stat st;
	for (int i = 0; i < 1000; i++) {
		if (stat(p->a, &st) == 0 && stat(p->b, &st) == 0)
			return;
		int status;
		cr_assert_eq(waitpid(p->socat, &status, WNOHANG), 0, "socat exited early");
		usleep(10000);
	}
	cr_assert_fail("socat made no pty links in %s", p->dir);
}

static void pty_pair_stop(struct pty_pair *p)
{
	kill(p->socat, SIGTERM);
	waitpid(p->socat, NULL, 0);
	unlink(p->a);
	unlink(p->b);
	rmdir(p->dir);
}

static void *serve_rtu(void *arg)
{
	serve_loop(arg);
	return NULL;
}

static void rtu_server_start(struct server *s, const char *path, uint16_t model_id)
{
	memset(s, 0, sizeof *s);
	s->unit = 1;
	s->listen_fd = -1;
	s->ctx = modbus_new_rtu(path, 115200, 'N', 8, 1);
	cr_assert_not_null(s->ctx, "modbus_new_rtu: %s", modbus_strerror(errno));
	modbus_set_slave(s->ctx, 1);
	cr_assert_eq(modbus_connect(s->ctx), 0, "server connect %s: %s", path, modbus_strerror(errno));
	s->map = modbus_mapping_new(16, 0, 100, 0);
	cr_assert_not_null(s->map);
	s->map->tab_registers[0] = model_id;
	modbus_set_indication_timeout(s->ctx, 0, 100000);
	cr_assert_eq(pthread_create(&s->thread, NULL, serve_rtu, s), 0);
}

static void rtu_server_stop(struct server *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	modbus_close(s->ctx);
	modbus_free(s->ctx);
	modbus_mapping_free(s->map);
}

/* The same driver over RTU framing (CRC, slave address byte) instead of
 * MBAP: set, status, and silence for a wrong unit id. */
Test(power, rtu_over_pty_pair)
{
	struct pty_pair p;
	pty_pair_start(&p);
	struct server s;
	rtu_server_start(&s, p.a, 60062);
	s.map->tab_registers[10] = 1187;
	s.map->tab_registers[11] = 42;

	char transport[128], err[512];
	snprintf(transport, sizeof transport, "rtu:%s@115200", p.b);
	const struct power_driver *drv = power_driver_find("rd60xx");
	struct power_dev *d = NULL;
	cr_assert_eq(drv->open(transport, 1, 0, &d, err, sizeof err), POWER_OK, "%s", err);
	cr_assert_eq(d->driver->set_voltage(d, 12.0), POWER_OK, "%s", power_error(d));
	cr_expect_eq(s.map->tab_registers[8], 1200);
	struct power_status st;
	cr_assert_eq(d->driver->status(d, &st), POWER_OK, "%s", power_error(d));
	cr_expect_float_eq(st.v_out, 11.87, 1e-9);
	cr_expect_float_eq(st.i_out, 0.042, 1e-9);
	d->driver->close(d);

	struct power_dev *d7 = NULL;
	int rc = drv->open(transport, 7, 100, &d7, err, sizeof err);
	cr_expect_eq(rc, POWER_ERR_TIMEOUT, "rc %d: %s", rc, err);
	assert_has(err, "unit 7");
	assert_has(err, transport);

	rtu_server_stop(&s);
	pty_pair_stop(&p);
}

/* ---- set points before switch-on (rig/supply.c through `rig power`) ---- */

/* A rack file of one slot whose supply is S, set to 12.00 V, 1.000 A. */
static void one_slot_rack(const struct server *s, const char *dir, char *path, size_t len)
{
	snprintf(path, len, "%s/rack.yaml", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "station: bench\nslots:\n  - id: 1\n    console: {port: %s/console}\n"
		   "    power: {driver: rd60xx, transport: \"%s\", unit: 1, volts: 12.00, amps: 1.000}\n",
		dir, s->transport);
	fclose(f);
}

/* Someone (another Modbus client, the front panel) holds V-SET at 30.00 V:
 * the rig writes 12.00 V, reads 30.00 V back and refuses to switch on,
 * exit 3, both values in the message and in the audit trail. */
Test(power, switch_on_refused_when_a_set_point_does_not_take, .timeout = 60)
{
	char dir[4096], rack[4200], db[4200], rigbin[4096];
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
	struct server s;
	riden_start(&s, 60062);
	s.hold_reg = 8;
	s.hold_val = 3000;
	s.map->tab_registers[8] = 3000;
	one_slot_rack(&s, dir, rack, sizeof rack);
	snprintf(db, sizeof db, "%s/r.db", dir);
	static char out[16384];
	char *on[] = { (char *)support_bin("rig", rigbin, sizeof rigbin), "power", "1", "on", "--rack", rack, "--db", db,
		       NULL };
	int rc = support_run(on, out, sizeof out);
	cr_assert_eq(rc, 3, "exit %d:\n%s", rc, out);
	assert_has(out, "slot 1 supply ");
	assert_has(out, "V-SET reads 30.00 V after writing 12.00 V");
	assert_has(out, "output left off");
	cr_assert_eq(s.map->tab_registers[18], 0, "the output was switched on at 30 V");
	char *audit[] = { on[0], "audit", "--db", db, NULL };
	cr_assert_eq(support_run(audit, out, sizeof out), 0, "%s", out);
	assert_has(out, "V-SET reads 30.00 V after writing 12.00 V");

	/* A supply that takes the values is switched on at them. */
	s.hold_reg = 0;
	rc = support_run(on, out, sizeof out);
	cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
	cr_expect_eq(s.map->tab_registers[8], 1200);
	cr_expect_eq(s.map->tab_registers[9], 1000);
	cr_expect_eq(s.map->tab_registers[18], 1);
	server_stop(&s);
	support_rmtree(dir);
}

/* The driver's limit hooks: V-SET, I-SET, OVP (82) and OCP (83), scaled
 * as the model's V and I. */
Test(power, rd60xx_limits_write_and_read_back)
{
	struct server s;
	riden_start(&s, 60062);
	struct power_dev *d = power_open_ok(&s, 1);
	cr_assert_not_null(d->driver->set_limits);
	cr_assert_not_null(d->driver->get_limits);
	struct power_limits want = { .volts = 12.0, .amps = 1.5, .ovp = 13.2, .ocp = 2.0 }, got;
	cr_assert_eq(d->driver->set_limits(d, &want), POWER_OK, "%s", power_error(d));
	cr_expect_eq(s.map->tab_registers[8], 1200);
	cr_expect_eq(s.map->tab_registers[9], 1500);
	cr_expect_eq(s.map->tab_registers[82], 1320);
	cr_expect_eq(s.map->tab_registers[83], 2000);
	cr_assert_eq(d->driver->get_limits(d, &got), POWER_OK, "%s", power_error(d));
	cr_expect_float_eq(got.volts, 12.0, 1e-9);
	cr_expect_float_eq(got.amps, 1.5, 1e-9);
	cr_expect_float_eq(got.ovp, 13.2, 1e-9);
	cr_expect_float_eq(got.ocp, 2.0, 1e-9);
	cr_expect_float_eq(got.v_res, 0.01, 1e-12);
	cr_expect_float_eq(got.i_res, 0.001, 1e-12);
	/* No protection limits given: registers 82 and 83 are left alone. */
	s.map->tab_registers[82] = 6200;
	want = (struct power_limits){ .volts = 5.0, .amps = 0.5, .ovp = NAN, .ocp = NAN };
	cr_assert_eq(d->driver->set_limits(d, &want), POWER_OK, "%s", power_error(d));
	cr_expect_eq(s.map->tab_registers[82], 6200);
	cr_expect_eq(s.map->tab_registers[8], 500);
	d->driver->close(d);
	server_stop(&s);
}

/* The same refusal inside a run: the slot's result is ERROR (the rig's
 * supply, not the device), never FAIL, with both values. Slot 1 of a
 * simulated rack, its supply replaced by a server that holds V-SET. */
Test(power, run_switch_on_refused_is_error_not_fail, .timeout = 60)
{
	char dir[4096], path[4200], rack[4200], db[4200], json[4200], scen[4200], rigbin[4096];
	cr_assert_eq(support_tmpdir(dir, sizeof dir), 0);
	struct simrack_proc sr;
	cr_assert_eq(simrack_start(&sr, 1, "reference", 31), 0);
	struct server s;
	riden_start(&s, 60062);
	s.hold_reg = 8;
	s.hold_val = 3000;
	s.map->tab_registers[8] = 3000;
	s.map->tab_registers[18] = 1;

	simrack_rackfile(&sr, path, sizeof path);
	char *text = support_read_file(path);
	cr_assert_not_null(text);
	char *t = strstr(text, "power: {driver: rd60xx, transport: \"");
	cr_assert_not_null(t, "%s", text);
	t += strlen("power: {driver: rd60xx, transport: \"");
	char *end = strchr(t, '"');
	snprintf(rack, sizeof rack, "%s/rack.yaml", dir);
	FILE *f = fopen(rack, "w");
	cr_assert_not_null(f);
	fprintf(f, "%.*s%s%s", (int)(t - text), text, s.transport, end);
	fclose(f);
	free(text);
	snprintf(scen, sizeof scen, "%s/cycle.yaml", dir);
	f = fopen(scen, "w");
	cr_assert_not_null(f);
	fputs("name: cycle\nrequires: [power]\nsteps:\n  - power: off\n  - power: on\n", f);
	fclose(f);
	snprintf(db, sizeof db, "%s/r.db", dir);
	snprintf(json, sizeof json, "%s/r.json", dir);

	static char out[65536];
	char *argv[] = { (char *)support_bin("rig", rigbin, sizeof rigbin), "run", scen, "--rack", rack, "--db", db,
			 "--json", json, NULL };
	int rc = support_run(argv, out, sizeof out);
	cr_assert_eq(rc, 3, "exit %d:\n%s", rc, out);
	char *record = support_read_file(json);
	cr_assert_not_null(record, "%s", out);
	bool error = strstr(record, "\"outcome\": \"error\"") != NULL, fail = strstr(record, "\"outcome\": \"fail\"") != NULL;
	bool named = strstr(record, "V-SET reads 30.00 V after writing 12.00 V; output left off") != NULL;
	free(record);
	cr_assert(error && !fail && named, "ERROR naming both values expected:\n%s", out);
	cr_assert_eq(s.map->tab_registers[18], 0, "the output was switched on at 30 V");
	server_stop(&s);
	simrack_stop(&sr);
	support_rmtree(dir);
}
