/*
 * cmd/fw.c - `rig fw`: firmware images (drivers/fwimage.h): pack a payload,
 * sign it with the vendor key, inspect a header, verify an image as a
 * device would before writing its inactive bank, and serve a directory of
 * images over HTTP with Range requests (rig/fwserve.h).
 *
 * Exit codes keep the rig's meaning (cli.h): a file whose header parses but
 * which fails a check (size, hash, signature, model) is 1; a file that is
 * not an image at all (its header does not parse) is 2, like any malformed
 * input; a file or key that cannot be read is 3.
 */
#include "cli.h"
#include "timefmt.h"
#include "fwimage.h"
#include "fwserve.h"
#include "json.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char cmd_fw_usage[] =
	"usage: rig fw pack --vendor V --model M --version X --payload FILE -o OUT [--build-time S]\n"
	"       rig fw sign --key PRIV.pem IN -o OUT\n"
	"       rig fw inspect FILE [--json]\n"
	"       rig fw verify FILE --pubkey PUB.pem [--model M] [--json]\n"
	"       rig fw serve DIR [--listen HOST:PORT]\n\n"
	"Firmware images: a 176-byte header (vendor, model, version, build time,\n"
	"payload size and SHA-256), the payload, and an Ed25519 signature by the\n"
	"vendor key over header and payload (docs/firmware.md).\n\n"
	"  pack     build an unsigned image from a payload file; --build-time is Unix\n"
	"           seconds (default $SOURCE_DATE_EPOCH, else now)\n"
	"  sign     sign an image (replacing any signature) with an Ed25519 private\n"
	"           key (openssl genpkey -algorithm ed25519 -out PRIV.pem)\n"
	"  inspect  print the header, whether the image is complete and its payload\n"
	"           hash matches, and the behaviour marker simulated devices act on;\n"
	"           checks nothing against a key\n"
	"  verify   every check a device makes before writing a bank: size, payload\n"
	"           hash, signature against PUB.pem (openssl pkey -pubout), model\n"
	"  serve    serve the images in DIR over HTTP with Range requests until\n"
	"           SIGINT/SIGTERM (default 127.0.0.1:0: a free port, printed)\n\n"
	"exit: 0 ok, 1 a check failed (truncated, trailing bytes, hash mismatch,\n"
	"      unsigned, bad signature, wrong model: each named), 2 usage error or a\n"
	"      file that is not an image (malformed header), 3 unreadable file or key,\n"
	"      or (serve) cannot listen\n";

/* ---- files ---- */

/* Reads at most MAX bytes of PATH into a malloc'ed *OUT (plus a NUL, so PEM
 * text can be used as a string). A longer file is read up to MAX + 1 bytes,
 * enough for the caller to see it is too long. Returns 0 or -1 (errno). */
static int read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t cap = 64 * 1024, n = 0;
	uint8_t *buf = malloc(cap + 1);
	while (buf) {
		if (n == cap) {
			if (cap > max)
				break;
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			uint8_t *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				buf = NULL;
				errno = ENOMEM;
				break;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	int failed = !buf || ferror(f);
	int saved = errno ? errno : EIO;
	fclose(f);
	if (failed) {
		free(buf);
		errno = saved;
		return -1;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* Writes through a temp file and a rename, so OUT is never half written. */
static int write_file(const char *path, const uint8_t *data, size_t len)
{
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	FILE *f = fopen(tmp, "wb");
	if (!f)
		return -1;
	bool ok = fwrite(data, 1, len, f) == len;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path) < 0) {
		int saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return 0;
}

/* Exit code for a fwimage error (see the file comment). */
static int exit_of(int rc)
{
	switch (rc) {
	case FWIMAGE_OK: return RIG_EXIT_OK;
	case FWIMAGE_ERR_FORMAT:
	case FWIMAGE_ERR_ARG:
	case FWIMAGE_ERR_KEY: return RIG_EXIT_USAGE;
	case FWIMAGE_ERR_NOMEM:
	case FWIMAGE_ERR_CRYPTO: return RIG_EXIT_INFRA;
	default: return RIG_EXIT_FAIL;
	}
}

/* ---- pack ---- */

static int fw_pack(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "vendor", required_argument, NULL, 'V' }, { "model", required_argument, NULL, 'm' },
		{ "version", required_argument, NULL, 'v' }, { "payload", required_argument, NULL, 'p' },
		{ "output", required_argument, NULL, 'o' }, { "build-time", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *vendor = NULL, *model = NULL, *version = NULL, *payload = NULL, *outp = NULL;
	const char *when = getenv("SOURCE_DATE_EPOCH");
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'V': vendor = optarg; break;
		case 'm': model = optarg; break;
		case 'v': version = optarg; break;
		case 'p': payload = optarg; break;
		case 'o': outp = optarg; break;
		case 't': when = optarg; break;
		default: return cli_bad_option("fw pack", longopts, argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_fail(RIG_EXIT_USAGE, "fw pack", "unexpected argument '%s'", argv[optind]);
	if (!vendor || !model || !version || !payload || !outp)
		return cli_fail(RIG_EXIT_USAGE, "fw pack", "--vendor, --model, --version, --payload and -o are all needed");
	long build_time = (long)time(NULL);
	if (when && cli_long(when, 0, 0x7FFFFFFFFFFFL, &build_time))
		return cli_fail(RIG_EXIT_USAGE, "fw pack", "build time '%s' is not Unix seconds", when);
	uint8_t *data;
	size_t len;
	if (read_file(payload, FWIMAGE_PAYLOAD_MAX, &data, &len))
		return cli_fail(RIG_EXIT_INFRA, "fw pack", "payload %s: %s", payload, strerror(errno));
	uint8_t *img;
	size_t img_len;
	char err[256];
	int rc = fwimage_pack(vendor, model, version, (uint64_t)build_time, data, len, &img, &img_len, err, sizeof err);
	free(data);
	if (rc)
		return cli_fail(exit_of(rc), "fw pack", "payload %s: %s", payload, err);
	rc = write_file(outp, img, img_len);
	free(img);
	if (rc)
		return cli_fail(RIG_EXIT_INFRA, "fw pack", "%s: %s", outp, strerror(errno));
	printf("%s: %s %s %s, %zu-byte payload, unsigned\n", outp, vendor, model, version, len);
	return RIG_EXIT_OK;
}

/* ---- sign ---- */

static int fw_sign(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "key", required_argument, NULL, 'k' }, { "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *keyp = NULL, *outp = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': keyp = optarg; break;
		case 'o': outp = optarg; break;
		default: return cli_bad_option("fw sign", longopts, argv[optind - 1]);
		}
	}
	if (!keyp || !outp || optind != argc - 1)
		return cli_fail(RIG_EXIT_USAGE, "fw sign", "usage: rig fw sign --key PRIV.pem IN -o OUT");
	const char *inp = argv[optind];
	uint8_t *key, *img;
	size_t key_len, img_len;
	if (read_file(keyp, 1 << 20, &key, &key_len))
		return cli_fail(RIG_EXIT_INFRA, "fw sign", "key %s: %s", keyp, strerror(errno));
	if (read_file(inp, FWIMAGE_IMAGE_MAX, &img, &img_len)) {
		free(key);
		return cli_fail(RIG_EXIT_INFRA, "fw sign", "%s: %s", inp, strerror(errno));
	}
	uint8_t *out;
	size_t out_len;
	char err[512];
	int rc = fwimage_sign(img, img_len, (const char *)key, key_len, &out, &out_len, err, sizeof err);
	/* The private key is wiped before its memory goes back to the heap. */
	memset(key, 0, key_len);
	free(key);
	free(img);
	if (rc)
		return cli_fail(exit_of(rc), "fw sign", "%s: %s", rc == FWIMAGE_ERR_KEY ? keyp : inp, err);
	rc = write_file(outp, out, out_len);
	free(out);
	if (rc)
		return cli_fail(RIG_EXIT_INFRA, "fw sign", "%s: %s", outp, strerror(errno));
	printf("%s: signed (Ed25519), %zu bytes\n", outp, out_len);
	return RIG_EXIT_OK;
}

/* ---- inspect ---- */

static const char *utc_text(uint64_t t, char *buf, size_t len)
{
	return time_iso_s(t > (uint64_t)INT64_MAX ? -1 : (int64_t)t, buf, len);
}

static int fw_inspect(int argc, char **argv)
{
	static const struct option longopts[] = { { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	bool as_json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c != 'j')
			return cli_bad_option("fw inspect", longopts, argv[optind - 1]);
		as_json = true;
	}
	if (optind != argc - 1)
		return cli_fail(RIG_EXIT_USAGE, "fw inspect", "usage: rig fw inspect FILE [--json]");
	const char *path = argv[optind];
	uint8_t *img;
	size_t len;
	if (read_file(path, FWIMAGE_IMAGE_MAX, &img, &len))
		return cli_fail(RIG_EXIT_INFRA, "fw inspect", "%s: %s", path, strerror(errno));
	struct fwimage_report r;
	char err[1024];
	/* No key: the signature is only described, never judged, here. */
	int rc = fwimage_verify(img, len, NULL, 0, NULL, &r, err, sizeof err);
	if (!r.header_ok) {
		free(img);
		return cli_fail(exit_of(rc), "fw inspect", "%s: %s", path, err);
	}
	const struct fwimage_header *h = &r.header;
	char behaviour[64], sha[65], when[40];
	size_t body = FWIMAGE_HEADER_SIZE + h->payload_size;
	bool marked = len >= FWIMAGE_HEADER_SIZE &&
		      fwimage_payload_behaviour(img + FWIMAGE_HEADER_SIZE, len < body ? len - FWIMAGE_HEADER_SIZE : h->payload_size,
						behaviour, sizeof behaviour);
	free(img);
	fwimage_sha256_hex(h->payload_sha256, sha);
	utc_text(h->build_time, when, sizeof when);
	const char *sig = h->sig_alg == FWIMAGE_SIG_ED25519 ? "ed25519" : "none";
	if (as_json) {
		struct json j;
		json_init(&j, stdout, false);
		json_obj_begin(&j, NULL);
		json_str(&j, "file", path);
		json_int(&j, "file_size", (int64_t)len);
		json_int(&j, "format_version", h->format_version);
		json_int(&j, "header_size", h->header_size);
		json_str(&j, "vendor", h->vendor);
		json_str(&j, "model", h->model);
		json_str(&j, "version", h->version);
		json_int(&j, "build_time", (int64_t)h->build_time);
		json_str(&j, "build_time_utc", when);
		json_int(&j, "payload_size", (int64_t)h->payload_size);
		json_str(&j, "payload_sha256", sha);
		json_str(&j, "signature", sig);
		json_int(&j, "signature_size", h->sig_size);
		json_int(&j, "image_size", (int64_t)fwimage_image_size(h));
		json_bool(&j, "complete", r.size == FWIMAGE_CHECK_OK);
		if (r.hash == FWIMAGE_CHECK_SKIPPED)
			json_null(&j, "payload_hash_ok");
		else
			json_bool(&j, "payload_hash_ok", r.hash == FWIMAGE_CHECK_OK);
		json_str(&j, "behaviour", behaviour);
		json_bool(&j, "behaviour_marked", marked);
		json_obj_end(&j);
		json_end(&j);
	} else {
		printf("file:           %s (%zu bytes)\n", path, len);
		printf("format:         %u (header %u bytes, CRC %08" PRIx32 ")\n", h->format_version, h->header_size,
		       h->header_crc);
		printf("vendor:         %s\nmodel:          %s\nversion:        %s\n", h->vendor, h->model, h->version);
		printf("build time:     %" PRIu64 " (%s)\n", h->build_time, when);
		printf("payload:        %" PRIu64 " bytes, SHA-256 %s\n", h->payload_size, sha);
		printf("signature:      %s%s\n", sig, h->sig_alg ? " (not checked: use rig fw verify)" : "");
		printf("size:           %s\n", r.size_msg);
		printf("payload hash:   %s\n", r.hash_msg);
		printf("behaviour:      %s%s\n", behaviour, marked ? "" : " (no marker)");
	}
	return RIG_EXIT_OK;
}

/* ---- verify ---- */

static const char *check_word(enum fwimage_check c)
{
	return c == FWIMAGE_CHECK_OK ? "ok" : c == FWIMAGE_CHECK_FAILED ? "FAILED" : "skipped";
}

static void check_json(struct json *j, const char *key, enum fwimage_check c, const char *msg)
{
	json_obj_begin(j, key);
	json_str(j, "result", c == FWIMAGE_CHECK_OK ? "ok" : c == FWIMAGE_CHECK_FAILED ? "failed" : "skipped");
	json_str(j, "detail", msg);
	json_obj_end(j);
}

static int fw_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pubkey", required_argument, NULL, 'k' }, { "model", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 },
	};
	const char *keyp = NULL, *model = NULL;
	bool as_json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': keyp = optarg; break;
		case 'm': model = optarg; break;
		case 'j': as_json = true; break;
		default: return cli_bad_option("fw verify", longopts, argv[optind - 1]);
		}
	}
	if (!keyp || optind != argc - 1)
		return cli_fail(RIG_EXIT_USAGE, "fw verify", "usage: rig fw verify FILE --pubkey PUB.pem [--model M]");
	const char *path = argv[optind];
	uint8_t *key, *img;
	size_t key_len, len;
	if (read_file(keyp, 1 << 20, &key, &key_len))
		return cli_fail(RIG_EXIT_INFRA, "fw verify", "public key %s: %s", keyp, strerror(errno));
	if (read_file(path, FWIMAGE_IMAGE_MAX, &img, &len)) {
		free(key);
		return cli_fail(RIG_EXIT_INFRA, "fw verify", "%s: %s", path, strerror(errno));
	}
	struct fwimage_report r;
	char err[1024];
	int rc = fwimage_verify(img, len, (const char *)key, key_len, model, &r, err, sizeof err);
	free(key);
	free(img);
	if (!r.header_ok || rc == FWIMAGE_ERR_KEY || rc == FWIMAGE_ERR_CRYPTO)
		return cli_fail(exit_of(rc), "fw verify", "%s: %s", rc == FWIMAGE_ERR_KEY ? keyp : path, err);
	if (as_json) {
		struct json j;
		json_init(&j, stdout, false);
		json_obj_begin(&j, NULL);
		json_str(&j, "file", path);
		json_str(&j, "vendor", r.header.vendor);
		json_str(&j, "model", r.header.model);
		json_str(&j, "version", r.header.version);
		check_json(&j, "size", r.size, r.size_msg);
		check_json(&j, "hash", r.hash, r.hash_msg);
		check_json(&j, "signature", r.signature, r.signature_msg);
		check_json(&j, "model_check", r.model, r.model_msg);
		json_str(&j, "verdict", rc ? fwimage_strerror(rc) : "ok");
		json_obj_end(&j);
		json_end(&j);
	} else {
		printf("%s: %s %s %s\n", path, r.header.vendor, r.header.model, r.header.version);
		printf("  size       %-7s %s\n", check_word(r.size), r.size_msg);
		printf("  hash       %-7s %s\n", check_word(r.hash), r.hash_msg);
		printf("  signature  %-7s %s\n", check_word(r.signature), r.signature_msg);
		printf("  model      %-7s %s\n", check_word(r.model), r.model_msg);
	}
	if (rc)
		return cli_fail(exit_of(rc), "fw verify", "%s: refused: %s", path, err);
	printf("%s: ok\n", path);
	return RIG_EXIT_OK;
}

/* ---- serve ---- */

static volatile sig_atomic_t stop_serving;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_serving = 1;
}

static int fw_serve(int argc, char **argv)
{
	static const struct option longopts[] = { { "listen", required_argument, NULL, 'l' }, { NULL, 0, NULL, 0 } };
	char host[64] = "127.0.0.1";
	long port = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c != 'l')
			return cli_bad_option("fw serve", longopts, argv[optind - 1]);
		const char *colon = strrchr(optarg, ':');
		if (!colon || colon == optarg || (size_t)(colon - optarg) >= sizeof host ||
		    cli_long(colon + 1, 0, 65535, &port))
			return cli_fail(RIG_EXIT_USAGE, "fw serve", "--listen '%s' is not HOST:PORT", optarg);
		snprintf(host, sizeof host, "%.*s", (int)(colon - optarg), optarg);
	}
	if (optind != argc - 1)
		return cli_fail(RIG_EXIT_USAGE, "fw serve", "usage: rig fw serve DIR [--listen HOST:PORT]");
	struct fwserve *s;
	char err[512], url[128];
	if (fwserve_start(argv[optind], host, (uint16_t)port, &s, err, sizeof err))
		return cli_fail(RIG_EXIT_INFRA, "fw serve", "%s", err);
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	printf("serving %s at %s\n", argv[optind], fwserve_url(s, "", url, sizeof url));
	fflush(stdout);
	while (!stop_serving)
		pause();
	struct fwserve_stats t;
	fwserve_stats(s, NULL, &t);
	fwserve_stop(s);
	printf("stopped: %" PRIu64 " requests (%" PRIu64 " ranged, %" PRIu64 " refused, %" PRIu64 " cut), %" PRIu64
	       " bytes\n",
	       t.requests, t.ranged, t.refused, t.cut, t.bytes);
	return RIG_EXIT_OK;
}

/* ---- dispatch ---- */

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} subcommands[] = {
	{ "pack", fw_pack }, { "sign", fw_sign }, { "inspect", fw_inspect }, { "verify", fw_verify }, { "serve", fw_serve },
};

int cmd_fw(int argc, char **argv)
{
	if (argc < 2)
		return cli_fail(RIG_EXIT_USAGE, "fw", "which subcommand? pack, sign, inspect, verify or serve (rig fw --help)");
	for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].run(argc - 1, argv + 1);
	return cli_fail(RIG_EXIT_USAGE, "fw", "unknown subcommand '%s' (pack, sign, inspect, verify, serve)", argv[1]);
}
