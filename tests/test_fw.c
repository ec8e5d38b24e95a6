/*
 * test_fw.c - firmware images (drivers/fwimage), `rig fw`, and the HTTP
 * image server (rig/fwserve).
 *
 * Every test makes its own fixtures with fwgen in its own temp dir and
 * serves them on its own port (0: the kernel picks), so tests run in
 * parallel. Hostile input is fed from exact-size heap buffers, so ASan
 * turns any over-read into a failure. Random input is seeded.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fwimage.h"
#include "fwserve.h"
#include "support.h"

#define OUT_MAX 16384
#define MODEL "FMB920"

/* ---- fixtures ---- */

struct fx {
	char dir[4096];
	char rig[4096];
};

static void fx_make(struct fx *f)
{
	char fwgen[4096], out[OUT_MAX];
	cr_assert_eq(support_tmpdir(f->dir, sizeof f->dir), 0);
	support_bin("rig", f->rig, sizeof f->rig);
	support_bin("fwgen", fwgen, sizeof fwgen);
	char *argv[] = { fwgen, f->dir, NULL };
	cr_assert_eq(support_run(argv, out, sizeof out), 0, "fwgen failed: %s", out);
}

static void fx_free(struct fx *f)
{
	support_rmtree(f->dir);
}

static const char *fx_path(const struct fx *f, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", f->dir, name);
	return buf;
}

/* The whole file into a heap buffer of exactly its size (ASan-exact). */
static uint8_t *load(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	cr_assert_not_null(fp, "%s: %s", path, strerror(errno));
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	rewind(fp);
	uint8_t *buf = malloc(n ? (size_t)n : 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static void save(const char *path, const uint8_t *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	cr_assert_not_null(fp);
	cr_assert_eq(fwrite(data, 1, len, fp), len);
	fclose(fp);
}

static char *load_text(const struct fx *f, const char *name)
{
	char p[4200];
	char *t = support_read_file(fx_path(f, name, p, sizeof p));
	cr_assert_not_null(t, "cannot read %s", p);
	return t;
}

/* Runs `rig fw ARGS...` (NULL-terminated); output into OUT; returns the exit code. */
static int rig_fw(const struct fx *f, char *out, const char *a1, const char *a2, const char *a3, const char *a4,
		  const char *a5, const char *a6, const char *a7)
{
	char *argv[] = { (char *)f->rig, "fw", (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, (char *)a6,
			 (char *)a7, NULL };
	return support_run(argv, out, OUT_MAX);
}

static int verify_cli(const struct fx *f, const char *file, const char *model, char *out)
{
	char img[4200], pub[4200];
	fx_path(f, file, img, sizeof img);
	fx_path(f, "vendor.pub.pem", pub, sizeof pub);
	if (model)
		return rig_fw(f, out, "verify", img, "--pubkey", pub, "--model", model, NULL);
	return rig_fw(f, out, "verify", img, "--pubkey", pub, NULL, NULL, NULL);
}

/* Rewrites the header CRC after a test changed header bytes: what is then
 * tested is the field, or the signature, not the CRC. */
static void fix_crc(uint8_t *img)
{
	uint32_t crc = fwimage_crc32(img, 172);
	img[172] = (uint8_t)(crc >> 24);
	img[173] = (uint8_t)(crc >> 16);
	img[174] = (uint8_t)(crc >> 8);
	img[175] = (uint8_t)crc;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* ---- format and library ---- */

Test(fw, crc32_check_value)
{
	cr_assert_eq(fwimage_crc32((const uint8_t *)"123456789", 9), 0xCBF43926u);
}

Test(fw, pack_sign_verify_round_trip)
{
	struct fx f;
	fx_make(&f);
	char *priv = load_text(&f, "vendor.key.pem"), *pub = load_text(&f, "vendor.pub.pem");
	char *other = load_text(&f, "other.pub.pem");
	uint8_t payload[5000];
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)(i * 7);
	uint8_t *img, *signed_img;
	size_t len, slen;
	char err[1024];
	cr_assert_eq(fwimage_pack("Acme", "AT-1", "1.2.3", 1700000000, payload, sizeof payload, &img, &len, err,
				  sizeof err), 0, "%s", err);
	cr_assert_eq(len, FWIMAGE_HEADER_SIZE + sizeof payload);
	cr_assert_eq(fwimage_verify(img, len, pub, strlen(pub), NULL, NULL, err, sizeof err), FWIMAGE_ERR_UNSIGNED);
	cr_assert_eq(fwimage_sign(img, len, priv, strlen(priv), &signed_img, &slen, err, sizeof err), 0, "%s", err);
	cr_assert_eq(slen, len + FWIMAGE_ED25519_SIZE);
	cr_assert_eq(memcmp(signed_img + FWIMAGE_HEADER_SIZE, payload, sizeof payload), 0);
	struct fwimage_report r;
	cr_assert_eq(fwimage_verify(signed_img, slen, pub, strlen(pub), "AT-1", &r, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(r.header.vendor, "Acme");
	cr_assert_str_eq(r.header.version, "1.2.3");
	cr_assert_eq(r.header.build_time, 1700000000u);
	cr_assert_eq(r.header.payload_size, sizeof payload);
	cr_assert(r.size == FWIMAGE_CHECK_OK && r.hash == FWIMAGE_CHECK_OK && r.signature == FWIMAGE_CHECK_OK &&
		  r.model == FWIMAGE_CHECK_OK);
	cr_assert_eq(fwimage_verify(signed_img, slen, other, strlen(other), "AT-1", NULL, err, sizeof err),
		     FWIMAGE_ERR_SIGNATURE);
	cr_assert_eq(fwimage_verify(signed_img, slen, pub, strlen(pub), "AT-2", NULL, err, sizeof err), FWIMAGE_ERR_MODEL);
	/* Re-signing a signed image replaces the signature, never appends a second. */
	uint8_t *again;
	size_t alen;
	cr_assert_eq(fwimage_sign(signed_img, slen, priv, strlen(priv), &again, &alen, err, sizeof err), 0, "%s", err);
	cr_assert_eq(alen, slen);
	cr_assert_eq(memcmp(again, signed_img, slen), 0, "Ed25519 is deterministic: same key, same bytes");
	free(again);
	cr_assert_eq(fwimage_sign(img, len, pub, strlen(pub), &again, &alen, err, sizeof err), FWIMAGE_ERR_KEY,
		     "a public key must not sign");
	free(again);
	free(img);
	free(signed_img);
	free(priv);
	free(pub);
	free(other);
	fx_free(&f);
}

Test(fw, cli_pack_sign_verify_round_trip)
{
	struct fx f;
	fx_make(&f);
	char payload[4200], packed[4200], signed_img[4200], key[4200], out[OUT_MAX];
	fx_path(&f, "payload.bin", payload, sizeof payload);
	fx_path(&f, "packed.fw", packed, sizeof packed);
	fx_path(&f, "signed.fw", signed_img, sizeof signed_img);
	fx_path(&f, "vendor.key.pem", key, sizeof key);
	save(payload, (const uint8_t *)"behaviour=no_modem\nhello\n", 25);
	cr_assert_eq(rig_fw(&f, out, "pack", "--vendor", "Acme", "--model", "AT-1", "--version", "3.1.4"), 2,
		     "pack without --payload and -o is a usage error: %s", out);
	char *pack_argv[] = { f.rig, "fw", "pack", "--vendor", "Acme", "--model", "AT-1", "--version", "3.1.4",
			      "--payload", payload, "--build-time", "1234", "-o", packed, NULL };
	cr_assert_eq(support_run(pack_argv, out, sizeof out), 0, "%s", out);
	cr_assert_eq(verify_cli(&f, "packed.fw", NULL, out), 1, "%s", out);
	cr_assert(strstr(out, "unsigned"), "%s", out);
	cr_assert_eq(rig_fw(&f, out, "sign", "--key", key, packed, "-o", signed_img, NULL), 0, "%s", out);
	cr_assert_eq(verify_cli(&f, "signed.fw", "AT-1", out), 0, "%s", out);
	cr_assert(strstr(out, "signed.fw: ok"), "%s", out);
	cr_assert_eq(rig_fw(&f, out, "inspect", signed_img, "--json", NULL, NULL, NULL, NULL), 0, "%s", out);
	cr_assert(strstr(out, "\"build_time\":1234"), "%s", out);
	cr_assert(strstr(out, "\"behaviour\":\"no_modem\""), "%s", out);
	cr_assert(strstr(out, "\"payload_size\":25"), "%s", out);
	fx_free(&f);
}

/* Each fixture fails for its own reason, and only that one. */
Test(fw, fixture_variants_through_rig_fw_verify)
{
	static const struct {
		const char *file;
		int exit;
		const char *says, *not_says;
	} cases[] = {
		{ "good-2.0.0.fw", 0, "good-2.0.0.fw: ok", "FAILED" },
		{ "crash-loop.fw", 0, "crash-loop.fw: ok", "FAILED" },
		{ "no-gnss.fw", 0, "no-gnss.fw: ok", "FAILED" },
		{ "no-modem.fw", 0, "no-modem.fw: ok", "FAILED" },
		{ "corrupt-payload.fw", 1, "refused: hash mismatch", "bad signature" },
		{ "bad-signature.fw", 1, "refused: bad signature", "hash mismatch" },
		{ "wrong-model.fw", 1, "refused: wrong model: image is for FMB130, device is FMB920", "bad signature" },
		{ "truncated.fw", 1, "refused: truncated", "bad signature" },
		{ "unsigned.fw", 1, "refused: unsigned", "hash mismatch" },
	};
	struct fx f;
	fx_make(&f);
	char out[OUT_MAX];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = verify_cli(&f, cases[i].file, MODEL, out);
		cr_assert_eq(rc, cases[i].exit, "%s: exit %d, expected %d: %s", cases[i].file, rc, cases[i].exit, out);
		cr_assert(strstr(out, cases[i].says), "%s: expected '%s' in: %s", cases[i].file, cases[i].says, out);
		cr_assert(!strstr(out, cases[i].not_says), "%s: '%s' should not be said: %s", cases[i].file,
			  cases[i].not_says, out);
	}
	/* Without --model the wrong-model image is otherwise fine: the model
	 * check is the only thing wrong with it. */
	cr_assert_eq(verify_cli(&f, "wrong-model.fw", NULL, out), 0, "%s", out);
	fx_free(&f);
}

Test(fw, fixtures_are_reproducible_and_marked)
{
	struct fx a, b;
	fx_make(&a);
	fx_make(&b);
	static const char *const files[] = { "good-2.0.0.fw", "crash-loop.fw", "bad-signature.fw", "vendor.pub.pem" };
	for (size_t i = 0; i < 4; i++) {
		char pa[4200], pb[4200];
		size_t la, lb;
		uint8_t *da = load(fx_path(&a, files[i], pa, sizeof pa), &la), *db = load(fx_path(&b, files[i], pb, sizeof pb), &lb);
		cr_assert(la == lb && memcmp(da, db, la) == 0, "%s differs between two fwgen runs", files[i]);
		free(da);
		free(db);
	}
	static const struct {
		const char *file, *behaviour;
	} marks[] = { { "good-2.0.0.fw", "ok" }, { "crash-loop.fw", "crash_loop" }, { "no-gnss.fw", "no_gnss" },
		      { "no-modem.fw", "no_modem" } };
	for (size_t i = 0; i < 4; i++) {
		char p[4200], got[32];
		size_t len;
		uint8_t *img = load(fx_path(&a, marks[i].file, p, sizeof p), &len);
		cr_assert(fwimage_payload_behaviour(img + FWIMAGE_HEADER_SIZE, len - FWIMAGE_HEADER_SIZE - 64, got, sizeof got));
		cr_assert_str_eq(got, marks[i].behaviour, "%s", marks[i].file);
		free(img);
	}
	char got[32];
	cr_assert(!fwimage_payload_behaviour((const uint8_t *)"nothing here\n", 13, got, sizeof got));
	cr_assert_str_eq(got, "ok");
	fx_free(&a);
	fx_free(&b);
}

Test(fw, tampered_payload_or_signature_refused)
{
	struct fx f;
	fx_make(&f);
	char p[4200], out[OUT_MAX];
	size_t len;
	uint8_t *img = load(fx_path(&f, "good-2.0.0.fw", p, sizeof p), &len);
	char *pub = load_text(&f, "vendor.pub.pem");
	char err[1024];
	size_t body = len - FWIMAGE_ED25519_SIZE;
	/* Payload bytes (a stride through all of it): the hash catches them. */
	for (size_t i = FWIMAGE_HEADER_SIZE; i < body; i += 97) {
		img[i] ^= 0x20;
		int rc = fwimage_verify(img, len, pub, strlen(pub), MODEL, NULL, err, sizeof err);
		img[i] ^= 0x20;
		cr_assert_eq(rc, FWIMAGE_ERR_HASH, "payload byte %zu flipped: %s", i, err);
		cr_assert(strstr(err, "bad signature"), "a flipped payload also breaks the signature: %s", err);
	}
	/* Signature bytes: only the signature catches them. */
	for (size_t i = body; i < len; i++) {
		img[i] ^= 0x01;
		int rc = fwimage_verify(img, len, pub, strlen(pub), MODEL, NULL, err, sizeof err);
		img[i] ^= 0x01;
		cr_assert_eq(rc, FWIMAGE_ERR_SIGNATURE, "signature byte %zu flipped: %s", i, err);
	}
	/* And through the command: one payload byte in the middle. */
	img[FWIMAGE_HEADER_SIZE + 5000] ^= 0xFF;
	save(fx_path(&f, "tampered.fw", p, sizeof p), img, len);
	cr_assert_eq(verify_cli(&f, "tampered.fw", MODEL, out), 1, "%s", out);
	cr_assert(strstr(out, "refused: hash mismatch"), "%s", out);
	free(img);
	free(pub);
	fx_free(&f);
}

/* A flipped header byte is a damaged header (CRC, exit 2); a header byte
 * changed by someone who fixed the CRC is a forgery (signature, exit 1). */
Test(fw, tampered_header_refused)
{
	struct fx f;
	fx_make(&f);
	char p[4200], out[OUT_MAX];
	size_t len;
	uint8_t *img = load(fx_path(&f, "good-2.0.0.fw", p, sizeof p), &len);
	char *pub = load_text(&f, "vendor.pub.pem");
	char err[1024];
	for (size_t i = 0; i < FWIMAGE_HEADER_SIZE; i++) {
		img[i] ^= 0x04;
		int rc = fwimage_verify(img, len, pub, strlen(pub), MODEL, NULL, err, sizeof err);
		cr_assert_eq(rc, FWIMAGE_ERR_FORMAT, "header byte %zu flipped: %d %s", i, rc, err);
		if (i >= 16 && i < 172) {
			uint8_t saved[4];
			memcpy(saved, img + 172, 4);
			fix_crc(img);
			rc = fwimage_verify(img, len, pub, strlen(pub), MODEL, NULL, err, sizeof err);
			cr_assert_neq(rc, FWIMAGE_OK, "header byte %zu changed with a good CRC was accepted", i);
			memcpy(img + 172, saved, 4);
		}
		img[i] ^= 0x04;
	}
	cr_assert_eq(fwimage_verify(img, len, pub, strlen(pub), MODEL, NULL, err, sizeof err), FWIMAGE_OK, "%s", err);
	/* Version 2.0.0 -> 9.0.0 with the CRC fixed: only the signature knows. */
	img[80] = '9';
	fix_crc(img);
	save(fx_path(&f, "forged.fw", p, sizeof p), img, len);
	cr_assert_eq(verify_cli(&f, "forged.fw", MODEL, out), 1, "%s", out);
	cr_assert(strstr(out, "refused: bad signature"), "%s", out);
	cr_assert(strstr(out, "9.0.0"), "%s", out);
	img[80] = '2';
	img[60] ^= 0x01;  /* inside the model field, CRC left stale */
	save(fx_path(&f, "damaged.fw", p, sizeof p), img, len);
	cr_assert_eq(verify_cli(&f, "damaged.fw", MODEL, out), 2, "%s", out);
	cr_assert(strstr(out, "malformed header: CRC-32 at byte 172"), "%s", out);
	free(img);
	free(pub);
	fx_free(&f);
}

/* Every prefix of an image: a header prefix is malformed, a longer one is
 * truncated; only the whole image passes. Exact-size buffers: ASan sees
 * any read past the end. */
Test(fw, every_truncation_refused_without_over_read)
{
	struct fx f;
	fx_make(&f);
	char p[4200];
	size_t len;
	uint8_t *img = load(fx_path(&f, "good-2.0.0.fw", p, sizeof p), &len);
	char *pub = load_text(&f, "vendor.pub.pem");
	char err[1024];
	for (size_t n = 0; n <= len; n += n < FWIMAGE_HEADER_SIZE + 64 || n > len - 80 ? 1 : 499) {
		uint8_t *cut = malloc(n ? n : 1);
		memcpy(cut, img, n);
		struct fwimage_header h;
		int hrc = fwimage_header_parse(cut, n, &h, err, sizeof err);
		int rc = fwimage_verify(cut, n, pub, strlen(pub), MODEL, NULL, err, sizeof err);
		free(cut);
		if (n < FWIMAGE_HEADER_SIZE) {
			cr_assert_eq(hrc, FWIMAGE_ERR_FORMAT, "%zu bytes", n);
			cr_assert_eq(rc, FWIMAGE_ERR_FORMAT, "%zu bytes", n);
			cr_assert(strstr(err, "malformed header: only"), "%zu bytes: %s", n, err);
		} else if (n < len) {
			cr_assert_eq(hrc, 0, "%zu bytes: %s", n, err);
			cr_assert_eq(rc, FWIMAGE_ERR_TRUNCATED, "%zu bytes: %s", n, err);
		} else {
			cr_assert_eq(rc, FWIMAGE_OK, "whole image: %s", err);
		}
	}
	/* One byte too many is refused too. */
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, img, len);
	longer[len] = 0;
	cr_assert_eq(fwimage_verify(longer, len + 1, pub, strlen(pub), MODEL, NULL, err, sizeof err),
		     FWIMAGE_ERR_TRAILING, "%s", err);
	free(longer);
	/* Through the command: header cuts are exit 2, payload cuts exit 1. */
	static const size_t cuts[] = { 0, 5, 8, 100, 175, 176, 177, 5000 };
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		char out[OUT_MAX];
		save(fx_path(&f, "cut.fw", p, sizeof p), img, cuts[i]);
		int rc = verify_cli(&f, "cut.fw", MODEL, out);
		cr_assert_eq(rc, cuts[i] < FWIMAGE_HEADER_SIZE ? 2 : 1, "cut at %zu: %s", cuts[i], out);
		cr_assert(strstr(out, cuts[i] < FWIMAGE_HEADER_SIZE ? "malformed header" : "refused: truncated"),
			  "cut at %zu: %s", cuts[i], out);
	}
	free(img);
	free(pub);
	fx_free(&f);
}

Test(fw, malformed_headers_named)
{
	struct fx f;
	fx_make(&f);
	char p[4200];
	size_t len;
	uint8_t *good = load(fx_path(&f, "good-2.0.0.fw", p, sizeof p), &len);
	uint8_t h[FWIMAGE_HEADER_SIZE];
	struct fwimage_header hd;
	char err[512];
	static const struct {
		uint64_t size;
	} sizes[] = { { 0 }, { FWIMAGE_PAYLOAD_MAX + 1ull }, { 1ull << 32 }, { 1ull << 63 }, { UINT64_MAX } };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		memcpy(h, good, sizeof h);
		put64(h + 120, sizes[i].size);
		fix_crc(h);
		cr_assert_eq(fwimage_header_parse(h, sizeof h, &hd, err, sizeof err), FWIMAGE_ERR_FORMAT);
		cr_assert(strstr(err, "payload size") && strstr(err, "byte 120"), "%s", err);
	}
	/* A huge size through the command: refused as malformed, no allocation. */
	memcpy(h, good, sizeof h);
	put64(h + 120, UINT64_MAX);
	fix_crc(h);
	save(fx_path(&f, "huge.fw", p, sizeof p), h, sizeof h);
	char out[OUT_MAX];
	cr_assert_eq(verify_cli(&f, "huge.fw", MODEL, out), 2, "%s", out);
	cr_assert(strstr(out, "payload size 18446744073709551615"), "%s", out);

	static const struct {
		int off;
		uint8_t val;
		bool crc;
		const char *says;
	} cases[] = {
		{ 0, 'X', false, "bad magic at byte 0" },
		{ 5, '2', false, "bad magic at byte 5" },
		{ 9, 2, true, "format version 2" },
		{ 11, 177, true, "header size" },
		{ 15, 1, true, "flags" },
		{ 16, 0, true, "vendor (byte 16) is empty" },
		{ 50, 0x07, true, "model has a non-printable byte 0x07 at byte 50" },
		{ 90, 'x', true, "version has a nonzero byte" },
		{ 161, 2, true, "signature algorithm 2" },
		{ 163, 32, true, "signature algorithm 1 with size 32" },
		{ 170, 1, true, "reserved byte 170" },
		{ 174, 0, false, "CRC-32 at byte 172" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memcpy(h, good, sizeof h);
		h[cases[i].off] = cases[i].val;
		if (cases[i].crc)
			fix_crc(h);
		int rc = fwimage_header_parse(h, sizeof h, &hd, err, sizeof err);
		cr_assert_eq(rc, FWIMAGE_ERR_FORMAT, "byte %d", cases[i].off);
		cr_assert(strstr(err, cases[i].says), "byte %d: expected '%s', got '%s'", cases[i].off, cases[i].says, err);
	}
	/* A field filling all 32 bytes has no terminator. */
	memcpy(h, good, sizeof h);
	memset(h + 48, 'A', 32);
	fix_crc(h);
	cr_assert_eq(fwimage_header_parse(h, sizeof h, &hd, err, sizeof err), FWIMAGE_ERR_FORMAT);
	cr_assert(strstr(err, "model (bytes 48..79) is not NUL-terminated"), "%s", err);
	/* Not an image at all, through the command. */
	save(fx_path(&f, "text.fw", p, sizeof p), (const uint8_t *)"<html>404</html>\n", 17);
	cr_assert_eq(verify_cli(&f, "text.fw", MODEL, out), 2, "%s", out);
	cr_assert(strstr(out, "not a trackrig firmware image"), "%s", out);
	free(good);
	fx_free(&f);
}

/* Random headers with a valid magic and CRC, so the parser's field checks
 * (not the CRC) meet the garbage. Nothing may crash or over-read, and
 * whatever parses must describe a sane image. */
Test(fw, random_headers_never_crash)
{
	uint64_t seed = 0x5EEDF00Dull;
	char err[512];
	for (int round = 0; round < 20000; round++) {
		uint8_t *h = malloc(FWIMAGE_HEADER_SIZE);
		for (int i = 0; i < FWIMAGE_HEADER_SIZE; i++)
			h[i] = (uint8_t)rnd(&seed);
		memcpy(h, FWIMAGE_MAGIC, 8);
		if (round % 2) {  /* half of them plausible up to a few fields */
			h[8] = 0, h[9] = 1, h[10] = 0, h[11] = FWIMAGE_HEADER_SIZE;
			memset(h + 12, 0, 4);
		}
		fix_crc(h);
		struct fwimage_header hd;
		size_t n = (size_t)(rnd(&seed) % (FWIMAGE_HEADER_SIZE + 1));
		if (round % 3)
			n = FWIMAGE_HEADER_SIZE;
		if (fwimage_header_parse(h, n, &hd, err, sizeof err) == FWIMAGE_OK) {
			cr_assert(hd.payload_size >= 1 && hd.payload_size <= FWIMAGE_PAYLOAD_MAX);
			cr_assert(strlen(hd.vendor) > 0 && strlen(hd.model) > 0 && strlen(hd.version) > 0);
		} else {
			cr_assert(err[0], "a refusal without a message");
		}
		free(h);
	}
}

Test(fw, streaming_verify_in_chunks)
{
	struct fx f;
	fx_make(&f);
	char p[4200], err[512];
	size_t len;
	uint64_t seed = 42;
	static const char *const files[] = { "good-2.0.0.fw", "corrupt-payload.fw", "wrong-model.fw", "truncated.fw" };
	static const int expect[] = { FWIMAGE_OK, FWIMAGE_ERR_HASH, FWIMAGE_ERR_MODEL, FWIMAGE_ERR_TRUNCATED };
	for (size_t k = 0; k < 4; k++) {
		uint8_t *img = load(fx_path(&f, files[k], p, sizeof p), &len);
		struct fwimage_stream s;
		cr_assert_eq(fwimage_stream_init(&s, MODEL, err, sizeof err), 0);
		int rc = FWIMAGE_OK;
		size_t at = 0;
		while (at < len && rc == FWIMAGE_OK) {
			size_t n = 1 + (size_t)(rnd(&seed) % 3000);
			if (n > len - at)
				n = len - at;
			rc = fwimage_stream_feed(&s, img + at, n, err, sizeof err);
			at += n;
		}
		if (k == 2) {  /* refused as soon as the header was in */
			cr_assert_eq(rc, FWIMAGE_ERR_MODEL, "%s", err);
			cr_assert_leq(at, FWIMAGE_HEADER_SIZE + 3000, "wrong model found only after %zu bytes", at);
		} else {
			cr_assert_eq(rc, FWIMAGE_OK, "%s: %s", files[k], err);
			if (k == 0)
				cr_assert_eq(fwimage_stream_expected(&s), len);
			rc = fwimage_stream_finish(&s, err, sizeof err);
			cr_assert_eq(rc, expect[k], "%s: %d %s", files[k], rc, err);
		}
		fwimage_stream_free(&s);
		fwimage_stream_free(&s);
		free(img);
	}
	/* An HTML error page instead of an image stops at the first byte. */
	struct fwimage_stream s;
	cr_assert_eq(fwimage_stream_init(&s, NULL, err, sizeof err), 0);
	cr_assert_eq(fwimage_stream_feed(&s, (const uint8_t *)"<", 1, err, sizeof err), FWIMAGE_ERR_FORMAT);
	cr_assert(strstr(err, "bad magic"), "%s", err);
	fwimage_stream_free(&s);
	/* More bytes than announced. */
	uint8_t *img = load(fx_path(&f, "good-2.0.0.fw", p, sizeof p), &len);
	cr_assert_eq(fwimage_stream_init(&s, MODEL, err, sizeof err), 0);
	cr_assert_eq(fwimage_stream_feed(&s, img, len, err, sizeof err), 0, "%s", err);
	cr_assert_eq(fwimage_stream_feed(&s, img, 1, err, sizeof err), FWIMAGE_ERR_TRAILING);
	fwimage_stream_free(&s);
	free(img);
	fx_free(&f);
}

/* ---- rig fw inspect and exit codes ---- */

Test(fw, inspect_json_fields)
{
	struct fx f;
	fx_make(&f);
	char p[4200], out[OUT_MAX];
	size_t len;
	uint8_t *img = load(fx_path(&f, "crash-loop.fw", p, sizeof p), &len);
	uint8_t md[32];
	char hex[65], want[128];
	cr_assert_eq(EVP_Digest(img + FWIMAGE_HEADER_SIZE, len - FWIMAGE_HEADER_SIZE - 64, md, NULL, EVP_sha256(), NULL), 1);
	free(img);
	cr_assert_eq(rig_fw(&f, out, "inspect", p, "--json", NULL, NULL, NULL, NULL), 0, "%s", out);
	snprintf(want, sizeof want, "\"payload_sha256\":\"%s\"", fwimage_sha256_hex(md, hex));
	const char *fields[] = {
		"\"format_version\":1", "\"header_size\":176", "\"vendor\":\"Teltonika\"", "\"model\":\"FMB920\"",
		"\"version\":\"2.0.1-crash\"", "\"build_time\":1767225600", "\"build_time_utc\":\"2026-01-01T00:00:00Z\"",
		"\"payload_size\":98304", want, "\"signature\":\"ed25519\"", "\"signature_size\":64",
		"\"image_size\":98544", "\"complete\":true", "\"payload_hash_ok\":true", "\"behaviour\":\"crash_loop\"",
	};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		cr_assert(strstr(out, fields[i]), "missing %s in %s", fields[i], out);
	cr_assert_eq(out[0], '{', "stdout is one JSON document: %s", out);
	cr_assert_eq(rig_fw(&f, out, "inspect", fx_path(&f, "truncated.fw", p, sizeof p), "--json", NULL, NULL, NULL,
			    NULL), 0, "%s", out);
	cr_assert(strstr(out, "\"complete\":false") && strstr(out, "\"payload_hash_ok\":null"), "%s", out);
	cr_assert_eq(rig_fw(&f, out, "inspect", fx_path(&f, "corrupt-payload.fw", p, sizeof p), "--json", NULL, NULL,
			    NULL, NULL), 0, "%s", out);
	cr_assert(strstr(out, "\"payload_hash_ok\":false"), "%s", out);
	fx_free(&f);
}

Test(fw, exit_codes_for_usage_and_unreadable_files)
{
	struct fx f;
	fx_make(&f);
	char out[OUT_MAX], img[4200], pub[4200], missing[4200], bad[4200];
	fx_path(&f, "good-2.0.0.fw", img, sizeof img);
	fx_path(&f, "vendor.pub.pem", pub, sizeof pub);
	fx_path(&f, "nope.fw", missing, sizeof missing);
	fx_path(&f, "crash-loop.fw", bad, sizeof bad);
	cr_assert_eq(rig_fw(&f, out, NULL, NULL, NULL, NULL, NULL, NULL, NULL), 2, "%s", out);
	cr_assert_eq(rig_fw(&f, out, "frobnicate", NULL, NULL, NULL, NULL, NULL, NULL), 2, "%s", out);
	cr_assert_eq(rig_fw(&f, out, "verify", img, NULL, NULL, NULL, NULL, NULL), 2, "no --pubkey: %s", out);
	cr_assert_eq(rig_fw(&f, out, "verify", missing, "--pubkey", pub, NULL, NULL, NULL), 3, "%s", out);
	cr_assert(strstr(out, "nope.fw") && strstr(out, "No such file"), "%s", out);
	cr_assert_eq(rig_fw(&f, out, "verify", img, "--pubkey", missing, NULL, NULL, NULL), 3, "%s", out);
	/* An image given as the key: readable, but not a key. */
	cr_assert_eq(rig_fw(&f, out, "verify", img, "--pubkey", bad, NULL, NULL, NULL), 2, "%s", out);
	cr_assert(strstr(out, "public key"), "%s", out);
	cr_assert_eq(rig_fw(&f, out, "inspect", missing, NULL, NULL, NULL, NULL, NULL), 3, "%s", out);
	cr_assert_eq(rig_fw(&f, out, "sign", "--key", pub, img, "-o", missing, NULL), 2, "a public key cannot sign: %s", out);
	cr_assert(!support_read_file(missing), "a failed sign must not leave an output file");
	fx_free(&f);
}

/* ---- HTTP ---- */

struct http_resp {
	int status;
	char head[4096];
	uint8_t *body;
	size_t body_len;
};

/* A tiny HTTP/1.1 client: one request, Connection: close, read to EOF. */
static void http_get(uint16_t port, const char *method, const char *path, const char *range, struct http_resp *r)
{
	memset(r, 0, sizeof *r);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s", strerror(errno));
	char req[512];
	int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%sConnection: close\r\n\r\n", method,
			 path, range ? "Range: " : "", range ? range : "", range ? "\r\n" : "");
	cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
	size_t cap = 1 << 16, used = 0;
	uint8_t *buf = malloc(cap);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		cr_assert_gt(poll(&pfd, 1, 10000), 0, "no answer within 10 s");
		if (used == cap)
			buf = realloc(buf, cap *= 2);
		ssize_t got = recv(fd, buf + used, cap - used, 0);
		if (got < 0 && errno == ECONNRESET)
			break;
		cr_assert_geq(got, 0, "recv: %s", strerror(errno));
		if (got == 0)
			break;
		used += (size_t)got;
	}
	close(fd);
	uint8_t *end = memmem(buf, used, "\r\n\r\n", 4);
	cr_assert_not_null(end, "no end of headers in %zu bytes", used);
	size_t hlen = (size_t)(end - buf);
	cr_assert_lt(hlen, sizeof r->head);
	memcpy(r->head, buf, hlen);
	cr_assert_eq(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1, "%s", r->head);
	r->body_len = used - hlen - 4;
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, end + 4, r->body_len);
	free(buf);
}

/* Header NAME's value (case-insensitive name) into OUT, or "" when absent. */
static const char *header(const struct http_resp *r, const char *name, char *out, size_t len)
{
	out[0] = '\0';
	size_t nl = strlen(name);
	for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
		const char *l = line + 2;
		if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
			const char *v = l + nl + 1;
			while (*v == ' ')
				v++;
			size_t vl = strcspn(v, "\r");
			snprintf(out, len, "%.*s", (int)vl, v);
			break;
		}
	}
	return out;
}

struct served {
	struct fx f;
	struct fwserve *srv;
	uint8_t *img;
	size_t len;
};

static void serve_fixtures(struct served *s)
{
	char err[512], p[4200];
	fx_make(&s->f);
	cr_assert_eq(fwserve_start(s->f.dir, NULL, 0, &s->srv, err, sizeof err), 0, "%s", err);
	cr_assert_gt(fwserve_port(s->srv), 0);
	s->img = load(fx_path(&s->f, "good-2.0.0.fw", p, sizeof p), &s->len);
}

static void served_free(struct served *s)
{
	fwserve_stop(s->srv);
	free(s->img);
	fx_free(&s->f);
}

Test(fw, http_full_get)
{
	struct served s;
	serve_fixtures(&s);
	struct http_resp r;
	char v[128], want[64];
	http_get(fwserve_port(s.srv), "GET", "/good-2.0.0.fw", NULL, &r);
	cr_assert_eq(r.status, 200, "%s", r.head);
	cr_assert_eq(r.body_len, s.len);
	cr_assert_eq(memcmp(r.body, s.img, s.len), 0);
	snprintf(want, sizeof want, "%zu", s.len);
	cr_assert_str_eq(header(&r, "Content-Length", v, sizeof v), want);
	cr_assert_str_eq(header(&r, "Accept-Ranges", v, sizeof v), "bytes");
	free(r.body);
	struct fwserve_stats st;
	cr_assert(fwserve_stats(s.srv, "good-2.0.0.fw", &st));
	cr_assert_eq(st.requests, 1);
	cr_assert_eq(st.bytes, s.len);
	cr_assert_eq(st.ranged, 0);
	cr_assert(!fwserve_stats(s.srv, "crash-loop.fw", &st), "never requested");
	char url[128];
	snprintf(want, sizeof want, "http://127.0.0.1:%u/x.fw", fwserve_port(s.srv));
	cr_assert_str_eq(fwserve_url(s.srv, "x.fw", url, sizeof url), want);
	served_free(&s);
}

Test(fw, http_range_get)
{
	struct served s;
	serve_fixtures(&s);
	uint16_t port = fwserve_port(s.srv);
	static const struct {
		const char *range;
		size_t from, n;  /* n 0: to the end */
	} cases[] = { { "bytes=100-", 100, 0 }, { "bytes=0-99", 0, 100 }, { "bytes=-64", 0, 64 },
		      { "bytes=98000-999999999", 98000, 0 }, { "bytes=7-7", 7, 1 } };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t from = cases[i].from, n = cases[i].n;
		if (strcmp(cases[i].range, "bytes=-64") == 0)
			from = s.len - 64;
		if (!n)
			n = s.len - from;
		struct http_resp r;
		char v[128], want[128];
		http_get(port, "GET", "/good-2.0.0.fw", cases[i].range, &r);
		cr_assert_eq(r.status, 206, "%s: %s", cases[i].range, r.head);
		snprintf(want, sizeof want, "bytes %zu-%zu/%zu", from, from + n - 1, s.len);
		cr_assert_str_eq(header(&r, "Content-Range", v, sizeof v), want, "%s", cases[i].range);
		cr_assert_eq(r.body_len, n, "%s", cases[i].range);
		cr_assert_eq(memcmp(r.body, s.img + from, n), 0, "%s: wrong bytes", cases[i].range);
		free(r.body);
	}
	struct fwserve_stats st;
	fwserve_stats(s.srv, "good-2.0.0.fw", &st);
	cr_assert_eq(st.ranged, 5);
	served_free(&s);
}

Test(fw, http_bad_range_and_bad_paths)
{
	struct served s;
	serve_fixtures(&s);
	uint16_t port = fwserve_port(s.srv);
	char past[64], want[64], v[128];
	snprintf(past, sizeof past, "bytes=%zu-", s.len);
	snprintf(want, sizeof want, "bytes */%zu", s.len);
	const char *bad[] = { past, "bytes=50-10", "bytes=abc-", "bytes=-0", "bytes 5-6", "bytes=1-2-3" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct http_resp r;
		http_get(port, "GET", "/good-2.0.0.fw", bad[i], &r);
		cr_assert_eq(r.status, 416, "%s: %s", bad[i], r.head);
		cr_assert_str_eq(header(&r, "Content-Range", v, sizeof v), want, "%s", bad[i]);
		free(r.body);
	}
	struct fwserve_stats st;
	fwserve_stats(s.srv, "good-2.0.0.fw", &st);
	cr_assert_eq(st.refused, sizeof bad / sizeof bad[0]);
	cr_assert_eq(st.bytes, 0, "no image byte goes out on a refused range");
	static const char *const paths[] = { "/nope.fw", "/../etc/passwd", "/.hidden", "/", "/a%2Fb", "/AT-300/",
					     "/../good-2.0.0.fw", "/./good-2.0.0.fw", "/AT-300/../good-2.0.0.fw",
					     "/AT-300/.hidden", "/a/b/good-2.0.0.fw", "//good-2.0.0.fw" };
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		struct http_resp r;
		http_get(port, "GET", paths[i], NULL, &r);
		cr_assert_eq(r.status, 404, "%s: %s", paths[i], r.head);
		free(r.body);
	}
	/* A model's own set, one folder down (DIR/MODEL/NAME). */
	char dir[4200], p[4300];
	snprintf(dir, sizeof dir, "%s/AT-300", s.f.dir);
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(p, sizeof p, "%s/good-2.0.0.fw", dir);
	save(p, s.img, 100);
	cr_assert(fwserve_has(s.srv, "AT-300/good-2.0.0.fw"));
	cr_assert(!fwserve_has(s.srv, "AT-300/crash-loop.fw"), "not in the model's folder");
	cr_assert(!fwserve_has(s.srv, "AT-300"), "a folder is no image");
	cr_assert(!fwserve_has(s.srv, "../good-2.0.0.fw"));
	struct http_resp r;
	http_get(port, "GET", "/AT-300/good-2.0.0.fw", NULL, &r);
	cr_assert_eq(r.status, 200, "%s", r.head);
	cr_assert_eq(r.body_len, 100, "the model's own file, not DIR's");
	free(r.body);
	unlink(p);
	rmdir(dir);
	http_get(port, "POST", "/good-2.0.0.fw", NULL, &r);
	cr_assert_eq(r.status, 405, "%s", r.head);
	free(r.body);
	/* Several ranges: the whole file, as RFC 9110 allows. */
	http_get(port, "GET", "/good-2.0.0.fw", "bytes=0-1,5-6", &r);
	cr_assert_eq(r.status, 200, "%s", r.head);
	cr_assert_eq(r.body_len, s.len);
	free(r.body);
	served_free(&s);
}

/* The download is cut mid-body; a Range request for the rest completes it,
 * and the reassembled file is the image, byte for byte, and verifies. */
Test(fw, http_cut_then_resume_reassembles)
{
	struct served s;
	serve_fixtures(&s);
	uint16_t port = fwserve_port(s.srv);
	const size_t cut = 40000;
	fwserve_cut_after(s.srv, "good-2.0.0.fw", cut);
	struct http_resp first, second;
	http_get(port, "GET", "/good-2.0.0.fw", NULL, &first);
	cr_assert_eq(first.status, 200, "%s", first.head);
	cr_assert_lt(first.body_len, s.len, "the response was not cut");
	cr_assert_eq(first.body_len, cut, "cut after %zu bytes, got %zu", cut, first.body_len);
	char range[64];
	snprintf(range, sizeof range, "bytes=%zu-", first.body_len);
	http_get(port, "GET", "/good-2.0.0.fw", range, &second);
	cr_assert_eq(second.status, 206, "%s", second.head);
	cr_assert_eq(first.body_len + second.body_len, s.len);
	uint8_t *whole = malloc(s.len);
	memcpy(whole, first.body, first.body_len);
	memcpy(whole + first.body_len, second.body, second.body_len);
	cr_assert_eq(memcmp(whole, s.img, s.len), 0, "reassembled file differs");
	char *pub = load_text(&s.f, "vendor.pub.pem"), err[512];
	cr_assert_eq(fwimage_verify(whole, s.len, pub, strlen(pub), MODEL, NULL, err, sizeof err), 0, "%s", err);
	struct fwserve_stats st;
	fwserve_stats(s.srv, "good-2.0.0.fw", &st);
	cr_assert_eq(st.requests, 2);
	cr_assert_eq(st.cut, 1);
	cr_assert_eq(st.ranged, 1);
	cr_assert_eq(st.bytes, s.len, "bytes counted: %llu", (unsigned long long)st.bytes);
	/* One-shot: the next request is whole again. */
	struct http_resp third;
	http_get(port, "GET", "/good-2.0.0.fw", NULL, &third);
	cr_assert_eq(third.body_len, s.len);
	free(third.body);
	free(first.body);
	free(second.body);
	free(whole);
	free(pub);
	served_free(&s);
}
