/*
 * cli.h - what every `rig` command shares: exit codes, the command table,
 * and the few options that mean the same thing everywhere.
 */
#ifndef TRACKRIG_CLI_H
#define TRACKRIG_CLI_H

#include <stdbool.h>
#include <stdio.h>

/* Exit codes, the same for every command (README.md documents them). */
enum rig_exit {
	RIG_EXIT_OK = 0,     /* done, or every check passed */
	RIG_EXIT_FAIL = 1,   /* a check failed */
	RIG_EXIT_USAGE = 2,  /* usage or configuration error */
	RIG_EXIT_INFRA = 3,  /* device, port or service unreachable */
};

/* One `rig` subcommand. run() gets argv with argv[0] the command name and
 * returns an enum rig_exit. */
struct rig_command {
	const char *name;
	const char *summary;  /* one line for `rig --help` */
	const char *usage;    /* full text for `rig NAME --help` */
	int (*run)(int argc, char **argv);
};

/* Looks up a command by name in the table main.c keeps. */
const struct rig_command *cli_find(const char *name);

/* Checks before a run that PATH can be written: its folder exists and takes
 * a new file, and PATH is not a directory. Creates and truncates nothing.
 * Returns 0, or -1 with why (naming the path) in ERR. */
int cli_output_writable(const char *path, char *err, size_t len);

/* True when argv holds -h or --help: the caller prints its usage. */
bool cli_wants_help(int argc, char **argv);

/* Prints "rig NAME: message" to stderr and returns CODE: for one-line error exits. */
int cli_fail(int code, const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Reads S as a whole number in MIN..MAX into *OUT. Returns 0, or -1. */
int cli_long(const char *s, long min, long max, long *out);

/* Milliseconds, 1..600000: every --timeout and --off-time. Returns 0 or -1. */
int cli_ms(const char *s, int *out);

/* Operator for the audit trail: --operator, else $USER, else "unknown". */
const char *cli_operator(const char *from_option);

/* Results store path: --db, else $TRACKRIG_DB, else ./trackrig.db. */
const char *cli_db_path(const char *from_option);

/* Path of a helper program shipped beside `rig` (simrack): $TRACKRIG_BIN/NAME,
 * else the directory of the running rig binary. Writes into BUF. */
const char *cli_sibling_program(const char *name, char *buf, size_t len);

/* The candidate closest to WORD (typos, swapped letters), or NULL when
 * none is close enough for the guess to help. */
const char *cli_suggest(const char *word, const char *const *candidates, size_t n);

struct option;
/* Reports the option getopt_long refused ('?'), ARG being argv[optind - 1],
 * as "rig CMD: unknown option '--junt'; did you mean '--junit'?" (or a
 * missing or unwanted value) and returns RIG_EXIT_USAGE. main.c turns
 * getopt's own messages off so this is the only one. */
int cli_bad_option(const char *cmd, const struct option *opts, const char *arg);

#endif
