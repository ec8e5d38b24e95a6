/*
 * serial_peer - drives one serial port through drivers/serial.c from its own
 * process, so that tests can run the libserialport backend with the pty
 * shim preloaded (LD_PRELOAD must be set before a program starts).
 *
 *   serial_peer BACKEND PATH TIMEOUT_MS OP...
 *
 * BACKEND is auto, libserialport or termios. Each OP runs in order, each
 * with its own TIMEOUT_MS, and prints one line on stdout (flushed, so the
 * driving test can wait for it):
 *
 *   send=TEXT   write TEXT and "\n"            -> "sent N"
 *   recv        read up to "\n"                -> "recv TEXT" (without "\r\n")
 *   echo=N      read exactly N bytes, send back -> "echo N"
 *   drain       wait for the output to leave   -> "drained"
 *   flush       discard both queues            -> "flushed"
 *   pause       wait for a line on stdin       -> "resumed"
 *   note=TEXT   write TEXT to stderr, as any diagnostic would -> "noted"
 *
 * After opening it prints "open BACKEND_NAME DESCRIBE". The first failure
 * prints "error KIND: MESSAGE" and ends the program with 10 - code:
 * 11 invalid argument, 12 open failed, 13 timeout, 14 device gone,
 * 15 I/O error. 2 is a usage error, 0 all done.
 */
#include "serial.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES 512

struct peer {
	serial_port *port;
	int timeout_ms;
	unsigned char pending[LINE_MAX_BYTES * 2];
	size_t npending;
};

static int fail(int code, const char *message)
{
	printf("error %s: %s\n", serial_strerror(code), message);
	fflush(stdout);
	return 10 - code;
}

static int port_fail(const struct peer *pr, int code)
{
	return fail(code, serial_last_error(pr->port));
}

static int op_send(struct peer *pr, const char *text)
{
	size_t len = strlen(text);
	char *line = malloc(len + 2);
	if (!line)
		return fail(SERIAL_ERR_IO, "out of memory");
	memcpy(line, text, len);
	line[len] = '\n';
	int rc = serial_write_all(pr->port, line, len + 1, pr->timeout_ms);
	free(line);
	if (rc != SERIAL_OK)
		return port_fail(pr, rc);
	printf("sent %zu\n", len + 1);
	return 0;
}

/* Bytes after the newline stay in pr->pending for the next recv. */
static int op_recv(struct peer *pr)
{
	for (;;) {
		unsigned char *nl = memchr(pr->pending, '\n', pr->npending);
		if (nl) {
			size_t len = (size_t)(nl - pr->pending);
			size_t text = len > 0 && pr->pending[len - 1] == '\r' ? len - 1 : len;
			printf("recv %.*s\n", (int)text, (const char *)pr->pending);
			pr->npending -= len + 1;
			memmove(pr->pending, nl + 1, pr->npending);
			return 0;
		}
		if (pr->npending >= LINE_MAX_BYTES)
			return fail(SERIAL_ERR_IO, "line longer than 512 bytes");
		ssize_t got = serial_read(pr->port, pr->pending + pr->npending,
					  sizeof pr->pending - pr->npending, pr->timeout_ms);
		if (got < 0)
			return port_fail(pr, (int)got);
		pr->npending += (size_t)got;
	}
}

static int op_echo(struct peer *pr, const char *count)
{
	char *end;
	long want = strtol(count, &end, 10);
	if (*end || want <= 0 || want > LINE_MAX_BYTES)
		return fail(SERIAL_ERR_ARG, "echo needs a count of 1..512");
	while (pr->npending < (size_t)want) {
		ssize_t got = serial_read(pr->port, pr->pending + pr->npending,
					  (size_t)want - pr->npending, pr->timeout_ms);
		if (got < 0)
			return port_fail(pr, (int)got);
		pr->npending += (size_t)got;
	}
	int rc = serial_write_all(pr->port, pr->pending, (size_t)want, pr->timeout_ms);
	if (rc != SERIAL_OK)
		return port_fail(pr, rc);
	pr->npending -= (size_t)want;
	memmove(pr->pending, pr->pending + want, pr->npending);
	printf("echo %ld\n", want);
	return 0;
}

static int run_op(struct peer *pr, const char *op)
{
	int rc;
	if (strncmp(op, "send=", 5) == 0)
		return op_send(pr, op + 5);
	if (strcmp(op, "recv") == 0)
		return op_recv(pr);
	if (strncmp(op, "echo=", 5) == 0)
		return op_echo(pr, op + 5);
	if (strcmp(op, "drain") == 0) {
		if ((rc = serial_drain(pr->port)) != SERIAL_OK)
			return port_fail(pr, rc);
		printf("drained\n");
		return 0;
	}
	if (strcmp(op, "flush") == 0) {
		if ((rc = serial_flush(pr->port, SERIAL_QUEUE_BOTH)) != SERIAL_OK)
			return port_fail(pr, rc);
		printf("flushed\n");
		return 0;
	}
	if (strcmp(op, "pause") == 0) {
		char line[64];
		if (!fgets(line, sizeof line, stdin))
			return fail(SERIAL_ERR_IO, "stdin closed while paused");
		printf("resumed\n");
		return 0;
	}
	if (strncmp(op, "note=", 5) == 0) {
		fprintf(stderr, "serial_peer: %s\n", op + 5);
		fflush(stderr);
		printf("noted\n");
		return 0;
	}
	fprintf(stderr, "serial_peer: unknown op '%s'\n", op);
	return 2;
}

static int parse_backend(const char *name, enum serial_backend *out)
{
	static const struct { const char *name; enum serial_backend backend; } names[] = {
		{ "auto", SERIAL_BACKEND_AUTO },
		{ "libserialport", SERIAL_BACKEND_LIBSERIALPORT },
		{ "termios", SERIAL_BACKEND_TERMIOS },
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(name, names[i].name) == 0) {
			*out = names[i].backend;
			return 0;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	enum serial_backend backend;
	char *end = NULL;
	if (argc < 4 || parse_backend(argv[1], &backend) != 0) {
		fprintf(stderr, "usage: serial_peer auto|libserialport|termios PATH TIMEOUT_MS OP...\n");
		return 2;
	}
	struct peer pr = { .timeout_ms = (int)strtol(argv[3], &end, 10) };
	if (*end || pr.timeout_ms < -1) {
		fprintf(stderr, "serial_peer: bad timeout '%s'\n", argv[3]);
		return 2;
	}

	int rc = serial_open(argv[2], NULL, backend, &pr.port);
	if (rc != SERIAL_OK)
		return fail(rc, serial_open_error());
	printf("open %s %s\n", serial_backend_name(pr.port), serial_describe(pr.port));
	fflush(stdout);

	int status = 0;
	for (int i = 4; i < argc && status == 0; i++) {
		status = run_op(&pr, argv[i]);
		fflush(stdout);
	}
	serial_close(pr.port);
	return status;
}
