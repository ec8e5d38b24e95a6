/*
 * test_serialbench.c - the serial-line bench families (drivers/power_korad.c,
 * drivers/relay_numato.c) against simrack's emulations on ptys, against a
 * pty that never answers (a stalled unit) and one that answers rubbish, and
 * end to end: `rig rack check` and `rig run power-loss offline-flush` on a rack mixing
 * them with an RD60xx and a Modbus coil board.
 *
 * No test measures time: deadlines are shortened only so the tests that
 * expect silence end sooner.
 */
#include "power.h"
#include "relay.h"
#include "support.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* One slot with a Korad-class supply and a Numato-class module. */
static const char *const serial_slot[] = { "--virtual", "--supplies", "korad", "--relays", "numato", NULL };

static void transport_of(const struct simrack_proc *sr, const char *name, int baud, char *buf, size_t len)
{
	snprintf(buf, len, "serial:%s/slot1/%s@%d", sr->dir, name, baud);
}

static struct power_dev *open_korad(const char *transport)
{
	const struct power_driver *drv = power_driver_find("korad");
	cr_assert_not_null(drv, "korad is in power_drivers[]");
	struct power_dev *d = NULL;
	char err[512] = "";
	int rc = drv->open(transport, 1, 0, &d, err, sizeof err);
	cr_assert_eq(rc, POWER_OK, "open %s: %s", transport, err);
	return d;
}

Test(serialbench, korad_identifies_sets_reads_and_switches, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 1, 41, serial_slot), 0);
	char t[4300];
	transport_of(&sr, "korad", 9600, t, sizeof t);
	struct power_dev *d = open_korad(t);
	const struct power_driver *drv = d->driver;

	/* It starts on, at the rack's set points, feeding a device that draws. */
	struct power_status st;
	cr_assert_eq(drv->status(d, &st), POWER_OK, "%s", power_error(d));
	cr_assert(st.output_on, "the supply starts on");
	cr_assert_float_eq(st.v_set, 12.00, 0.005);
	cr_assert_float_eq(st.i_set, 1.000, 0.0005);
	cr_assert_float_eq(st.v_out, 12.00, 0.005);
	cr_assert(st.i_out > 0.01 && st.i_out < 0.5, "the tracker draws its current: %g A", st.i_out);
	cr_assert_eq(st.mode, POWER_MODE_CV);
	cr_assert(isnan(st.v_in), "a KA3005P does not report its input voltage");

	/* Set points, written and read back. */
	cr_assert_eq(drv->set_voltage(d, 9.5), POWER_OK, "%s", power_error(d));
	cr_assert_eq(drv->set_current(d, 0.75), POWER_OK, "%s", power_error(d));
	struct power_limits l;
	cr_assert_eq(drv->get_limits(d, &l), POWER_OK, "%s", power_error(d));
	cr_assert_float_eq(l.volts, 9.50, 0.005);
	cr_assert_float_eq(l.amps, 0.750, 0.0005);
	cr_assert(isnan(l.ovp) && isnan(l.ocp), "no OVP/OCP level on this family");
	cr_assert_eq(drv->status(d, &st), POWER_OK, "%s", power_error(d));
	cr_assert_float_eq(st.v_out, 9.50, 0.005);

	/* A limit through set_limits, and one it cannot have. */
	struct power_limits want = { .volts = 12.0, .amps = 1.0, .ovp = NAN, .ocp = NAN };
	cr_assert_eq(drv->set_limits(d, &want), POWER_OK, "%s", power_error(d));
	want.ovp = 13;
	cr_assert_eq(drv->set_limits(d, &want), POWER_ERR_ARG);
	cr_assert(strstr(power_error(d), "OVP"), "%s", power_error(d));
	cr_assert_eq(drv->set_voltage(d, 31), POWER_ERR_ARG, "31 V on a 30 V model is refused");
	cr_assert(strstr(power_error(d), "VSET1: 31 V is out of range for KA3005P (0..30)"), "%s", power_error(d));

	/* Off: nothing out, nothing drawn, and the status byte says so. */
	cr_assert_eq(drv->output(d, false), POWER_OK, "%s", power_error(d));
	cr_assert_eq(drv->status(d, &st), POWER_OK, "%s", power_error(d));
	cr_assert_not(st.output_on, "status byte: output off");
	cr_assert_float_eq(st.v_out, 0, 1e-9);
	cr_assert_float_eq(st.i_out, 0, 1e-9);
	cr_assert_eq(drv->output(d, true), POWER_OK, "%s", power_error(d));
	cr_assert_eq(drv->status(d, &st), POWER_OK, "%s", power_error(d));
	cr_assert(st.output_on, "status byte: output on again");
	cr_assert(st.i_out > 0.01, "the tracker draws again: %g A", st.i_out);
	drv->close(d);
	simrack_stop(&sr);
}

Test(serialbench, numato_switches_and_reads_through_echo_and_prompt, .timeout = 60)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 1, 42, serial_slot), 0);
	char t[4300], err[512] = "";
	transport_of(&sr, "numato", 19200, t, sizeof t);
	const struct relay_driver *drv = relay_driver_find("numato");
	cr_assert_not_null(drv, "numato is in relay_drivers[]");
	struct relay_dev *d;
	cr_assert_eq(drv->open(t, 1, 0, &d, err, sizeof err), RELAY_OK, "%s", err);
	bool on = true;
	/* The module starts as the device's wires: ignition off, antennas in. */
	cr_assert_eq(drv->get(d, 0, &on), RELAY_OK, "%s", relay_error(d));
	cr_assert_not(on, "ignition starts off");
	cr_assert_eq(drv->get(d, 1, &on), RELAY_OK, "%s", relay_error(d));
	cr_assert(on, "GNSS antenna starts connected");
	for (int ch = 0; ch < 3; ch++) {
		cr_assert_eq(drv->set(d, ch, true), RELAY_OK, "%s", relay_error(d));
		cr_assert_eq(drv->get(d, ch, &on), RELAY_OK, "%s", relay_error(d));
		cr_assert(on, "relay %d on", ch);
		cr_assert_eq(drv->set(d, ch, false), RELAY_OK, "%s", relay_error(d));
		cr_assert_eq(drv->get(d, ch, &on), RELAY_OK, "%s", relay_error(d));
		cr_assert_not(on, "relay %d off", ch);
	}
	cr_assert_eq(drv->set(d, 40, true), RELAY_ERR_ARG);
	cr_assert(strstr(relay_error(d), "bad channel 40"), "%s", relay_error(d));
	drv->close(d);
	simrack_stop(&sr);
}

/* ---- a misbehaving unit: a pty the test answers itself ---- */

struct fake {
	int master;
	char path[64];
	const char *(*answer)(const char *got, size_t n); /* NULL: silent */
	atomic_bool stop;
	pthread_t thread;
};

static void *fake_loop(void *arg)
{
	struct fake *f = arg;
	char buf[256];
	size_t n = 0;
	while (!atomic_load(&f->stop)) {
		struct pollfd p = { .fd = f->master, .events = POLLIN };
		if (poll(&p, 1, 20) <= 0)
			continue;
		ssize_t got = read(f->master, buf + n, sizeof buf - 1 - n);
		if (got <= 0)
			continue;
		n += (size_t)got;
		buf[n] = '\0';
		const char *a = f->answer ? f->answer(buf, n) : NULL;
		if (a) {
			ssize_t w = write(f->master, a, strlen(a));
			(void)w;
			n = 0;
		}
		if (n > sizeof buf - 64)
			n = 0;
	}
	return NULL;
}

static void fake_start(struct fake *f, const char *(*answer)(const char *, size_t))
{
	memset(f, 0, sizeof *f);
	f->master = posix_openpt(O_RDWR | O_NOCTTY);
	cr_assert_geq(f->master, 0);
	cr_assert_eq(grantpt(f->master), 0);
	cr_assert_eq(unlockpt(f->master), 0);
	cr_assert_eq(ptsname_r(f->master, f->path, sizeof f->path), 0);
	struct termios t;
	cr_assert_eq(tcgetattr(f->master, &t), 0);
	cfmakeraw(&t);
	cr_assert_eq(tcsetattr(f->master, TCSANOW, &t), 0);
	f->answer = answer;
	cr_assert_eq(pthread_create(&f->thread, NULL, fake_loop, f), 0);
}

static void fake_stop(struct fake *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	close(f->master);
}

/* A Korad that identifies itself, then answers every question with noise. */
static const char *korad_garbage(const char *got, size_t n)
{
	if (n >= 5 && strstr(got, "*IDN?"))
		return "KORAD KA3005P V5.8 SN:03379314";
	return strchr(got, '?') ? "\x8f\xff#!z" : NULL;
}

/* A Numato that echoes, then prints rubbish for every answer. */
static const char *numato_garbage(const char *got, size_t n)
{
	static char out[320];
	if (!n || got[n - 1] != '\r')
		return NULL;
	snprintf(out, sizeof out, "%.*s\n\r%s\n\r>", (int)(n - 1), got, strstr(got, "read") ? "maybe" : strstr(got, "ver") ? "00000008" : "");
	return out;
}

/* A "module" that prints a prompt but never echoes what it was sent. */
static const char *prompt_only(const char *got, size_t n)
{
	return n && got[n - 1] == '\r' ? "\n\rgarbage\n\r>" : NULL;
}

Test(serialbench, stalled_korad_is_a_timeout_naming_port_and_command, .timeout = 30)
{
	struct fake f;
	fake_start(&f, NULL);
	char t[128], err[512] = "";
	snprintf(t, sizeof t, "serial:%s@9600", f.path);
	struct power_dev *d = (struct power_dev *)1;
	int rc = power_driver_find("korad")->open(t, 1, 200, &d, err, sizeof err);
	cr_assert_eq(rc, POWER_ERR_TIMEOUT, "a silent supply: %d (%s)", rc, err);
	cr_assert_null(d);
	char want[200];
	snprintf(want, sizeof want, "%s: *IDN?: no answer within 200 ms", t);
	cr_assert(strstr(err, want), "'%s' lacks '%s'", err, want);
	fake_stop(&f);
}

Test(serialbench, garbage_from_korad_is_an_io_error_quoting_it, .timeout = 30)
{
	struct fake f;
	fake_start(&f, korad_garbage);
	char t[128];
	snprintf(t, sizeof t, "serial:%s", f.path);   /* 9600 by default */
	struct power_dev *d = open_korad(t);
	struct power_status st;
	cr_assert_eq(d->driver->status(d, &st), POWER_ERR_IO);
	cr_assert(strstr(power_error(d), "VSET1?: answer '\\x8f\\xff#!z' is not a number"), "%s", power_error(d));
	cr_assert(strstr(power_error(d), f.path), "names the port: %s", power_error(d));
	d->driver->close(d);
	fake_stop(&f);
}

Test(serialbench, stalled_numato_is_a_timeout_naming_port, .timeout = 30)
{
	struct fake f;
	fake_start(&f, NULL);
	char t[128], err[512] = "";
	snprintf(t, sizeof t, "serial:%s@19200", f.path);
	struct relay_dev *d;
	int rc = relay_driver_find("numato")->open(t, 1, 200, &d, err, sizeof err);
	cr_assert_eq(rc, RELAY_ERR_TIMEOUT, "a silent module: %d (%s)", rc, err);
	cr_assert(strstr(err, t) && strstr(err, "no '>' prompt within 200 ms"), "%s", err);
	fake_stop(&f);
}

Test(serialbench, garbage_from_numato_is_an_io_error_quoting_it, .timeout = 30)
{
	struct fake f;
	fake_start(&f, numato_garbage);
	char t[128], err[512] = "";
	snprintf(t, sizeof t, "serial:%s", f.path);
	struct relay_dev *d;
	cr_assert_eq(relay_driver_find("numato")->open(t, 1, 300, &d, err, sizeof err), RELAY_OK, "%s", err);
	bool on;
	cr_assert_eq(d->driver->get(d, 2, &on), RELAY_ERR_IO);
	cr_assert(strstr(relay_error(d), "relay read 2: answer 'maybe' is neither on nor off"), "%s", relay_error(d));
	d->driver->close(d);
	fake_stop(&f);

	fake_start(&f, prompt_only);
	snprintf(t, sizeof t, "serial:%s", f.path);
	cr_assert_eq(relay_driver_find("numato")->open(t, 1, 300, &d, err, sizeof err), RELAY_ERR_IO);
	cr_assert(strstr(err, "ver: no echo of the command in '\\n\\rgarbage\\n\\r>'"), "%s", err);
	fake_stop(&f);
}

/* ---- end to end: a rack mixing both families with the Modbus ones ---- */

static const char *rig_bin(void)
{
	static char buf[4096];
	return support_bin("rig", buf, sizeof buf);
}

Test(serialbench, mixed_rack_passes_rack_check_power_loss_and_offline_flush, .timeout = 120)
{
	/* Virtual time: the run moves it, and boots the units on the way. */
	static const char *const mixed[] = { "--virtual", "--profiles", "reference", "--supplies", "rd60xx,korad",
					     "--relays", "coil,numato", NULL };
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 2, 43, mixed), 0);
	char rackfile[4200], db[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(db, sizeof db, "%s/r.db", sr.dir);
	char *text = support_read_file(rackfile);
	cr_assert(text && strstr(text, "driver: rd60xx, transport: \"tcp://") &&
		  strstr(text, "driver: korad, transport: \"serial:") && strstr(text, "driver: numato") &&
		  strstr(text, "board: numato2"), "slot 1 RD60xx + coils, slot 2 Korad + Numato:\n%s", text);
	free(text);

	static char out[65536];
	char *run[] = { (char *)rig_bin(), "run", "power-loss", "offline-flush", "--rack", rackfile, "--db", db, NULL };
	int rc = support_run(run, out, sizeof out);
	cr_assert_eq(rc, 0, "power-loss and offline-flush on the mixed rack (exit %d):\n%s", rc, out);
	cr_assert(strstr(out, "slot 1: power-loss pass") && strstr(out, "slot 2: power-loss pass"), "%s", out);
	cr_assert(strstr(out, "slot 1: offline-flush pass") && strstr(out, "slot 2: offline-flush pass"), "%s", out);

	/* The units have booted: every console, supply and line answers. */
	char *check[] = { (char *)rig_bin(), "rack", "check", "--rack", rackfile, NULL };
	rc = support_run(check, out, sizeof out);
	cr_assert_eq(rc, 0, "rig rack check on the mixed rack (exit %d):\n%s", rc, out);
	cr_assert(strstr(out, "\n2     ok "), "slot 2's row:\n%s", out);

	/* The Numato's lines switch the slot as the coil board's do. */
	char *relay[] = { (char *)rig_bin(), "relay", "2", "ignition", "on", "--rack", rackfile, NULL };
	rc = support_run(relay, out, sizeof out);
	cr_assert_eq(rc, 0, "rig relay through the module (exit %d):\n%s", rc, out);
	cr_assert(strstr(out, "numato2") && strstr(out, " on"), "%s", out);
	simrack_stop(&sr);
}

/* The module's relays are the slot's wires: with its GNSS antenna switched
 * off through the Numato, the unit loses its fix and gnss-outage sees it. */
Test(serialbench, numato_switches_the_slots_wires_for_gnss_outage, .timeout = 120)
{
	struct simrack_proc sr;
	cr_assert_eq(simrack_start_args(&sr, 1, 44, serial_slot), 0);
	char rackfile[4200], db[4200];
	simrack_rackfile(&sr, rackfile, sizeof rackfile);
	snprintf(db, sizeof db, "%s/r.db", sr.dir);
	static char out[65536];
	char *run[] = { (char *)rig_bin(), "run", "gnss-outage", "--rack", rackfile, "--db", db, NULL };
	int rc = support_run(run, out, sizeof out);
	cr_assert_eq(rc, 0, "gnss-outage through the Numato module (exit %d):\n%s", rc, out);
	cr_assert(strstr(out, "slot 1: gnss-outage pass"), "%s", out);
	simrack_stop(&sr);
}
