/*
 * fwgen - writes the firmware fixture images and the test vendor key pair
 * into a directory (docs/firmware.md lists them and what each must do).
 *
 *   fwgen DIR [VENDOR:MODEL...]
 *
 * DIR gets the set for Teltonika FMB920 (the reference's model); each
 * VENDOR:MODEL gets the same set built for that model in DIR/MODEL, the
 * folder the rig looks in first for a slot of that model.
 *
 * The keys come from fixed seeds and Ed25519 signatures are deterministic,
 * so every run writes byte-identical files: a fixture never changes under
 * a test, and a diff of two builds' fixtures is empty. The test keys are
 * public test material; nothing real is ever signed with them.
 *
 * Each bad image is bad in exactly one way, so a device (or rig fw verify)
 * that refuses it can only be refusing it for that reason:
 *   corrupt-payload.fw  signed after a payload byte was flipped: only the
 *                       hash check catches it
 *   bad-signature.fw    signed by another key: only the signature fails
 *   wrong-model.fw      signed by the vendor for model FMB130 (AT-000 for an Acme set)
 *   truncated.fw        the good image cut inside its payload
 *   unsigned.fw         packed, never signed
 * crash-loop.fw, no-gnss.fw and no-modem.fw are valid, signed images whose
 * payload carries a behaviour marker the simulated device acts on.
 *
 * Exit 0, or 1 with the failure on stderr.
 */
#include "fwimage.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BUILD_TIME 1767225600u   /* 2026-01-01T00:00:00Z: fixed, for reproducible bytes */
#define PAYLOAD_SIZE (96 * 1024) /* several HTTP blocks, so ranges and cuts mean something */

static const char *out_dir;
static char set_dir[4000];   /* where the set being written goes: DIR or DIR/MODEL */
static const char *vendor;   /* the set's vendor */

static int die(const char *what, const char *why)
{
	fprintf(stderr, "fwgen: %s: %s\n", what, why);
	return 1;
}

static int write_bytes(const char *name, const void *data, size_t len)
{
	char path[sizeof set_dir + 64];
	snprintf(path, sizeof path, "%s/%s", set_dir, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		return die(path, strerror(errno));
	bool ok = fwrite(data, 1, len, f) == len;
	if (fclose(f) != 0 || !ok)
		return die(path, "write failed");
	return 0;
}

/* A key pair from a 32-byte seed, as PEM text (malloc'ed, NUL-terminated). */
static int make_key(const char *seed_text, char **priv_pem, char **pub_pem)
{
	uint8_t seed[32];
	unsigned int n = 0;
	EVP_Digest(seed_text, strlen(seed_text), seed, &n, EVP_sha256(), NULL);
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
	if (!k)
		return die(seed_text, "cannot make an Ed25519 key");
	char *pems[2] = { NULL, NULL };
	for (int i = 0; i < 2; i++) {
		BIO *b = BIO_new(BIO_s_mem());
		int ok = b && (i == 0 ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
				      : PEM_write_bio_PUBKEY(b, k));
		char *data;
		long len = ok ? BIO_get_mem_data(b, &data) : 0;
		if (len > 0 && (pems[i] = malloc((size_t)len + 1))) {
			memcpy(pems[i], data, (size_t)len);
			pems[i][len] = '\0';
		}
		BIO_free(b);
	}
	EVP_PKEY_free(k);
	if (!pems[0] || !pems[1]) {
		free(pems[0]);
		free(pems[1]);
		return die(seed_text, "cannot write the key as PEM");
	}
	*priv_pem = pems[0];
	*pub_pem = pems[1];
	return 0;
}

/* The marker block the simulated device reads, then deterministic filler
 * (so ranges and hashes are over bytes that are not all alike). */
static void make_payload(uint8_t *p, size_t len, const char *model, const char *version, const char *behaviour)
{
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	char head[256];
	int n = snprintf(head, sizeof head,
			 "TRACKRIG SIMULATED FIRMWARE\nvendor=%s\nmodel=%s\nversion=%s\nbehaviour=%s\n\n", vendor,
			 model, version, behaviour);
	memcpy(p, head, (size_t)n);
}

struct keys {
	char *vendor_priv, *vendor_pub, *other_priv, *other_pub;
};

/* Packs PAYLOAD as MODEL/VERSION; FLIP >= 0 flips that payload byte after
 * packing; KEY NULL leaves it unsigned. Writes NAME, cut to KEEP bytes when
 * KEEP is nonzero. */
static int image(const char *name, const char *model, const char *version, const char *behaviour, long flip,
		 const char *key, size_t keep)
{
	static uint8_t payload[PAYLOAD_SIZE];
	make_payload(payload, sizeof payload, model, version, behaviour);
	uint8_t *img, *signed_img;
	size_t len, signed_len;
	char err[512];
	if (fwimage_pack(vendor, model, version, BUILD_TIME, payload, sizeof payload, &img, &len, err, sizeof err))
		return die(name, err);
	if (flip >= 0)
		img[FWIMAGE_HEADER_SIZE + flip] ^= 0x01;
	if (key) {
		int rc = fwimage_sign(img, len, key, strlen(key), &signed_img, &signed_len, err, sizeof err);
		free(img);
		if (rc)
			return die(name, err);
		img = signed_img;
		len = signed_len;
	}
	int rc = write_bytes(name, img, keep && keep < len ? keep : len);
	free(img);
	return rc;
}

/* mkdir -p: the build asks for $(BUILD)/fixtures/fw before anything made $(BUILD)/fixtures. */
static int make_dirs(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		if (!c)
			return 0;
		*p = c;
	}
}

/* One image per way an update can go wrong, for VENDOR_ MODEL, into set_dir. */
static int write_set(const struct keys *k, const char *vendor_, const char *model, const char *other_model)
{
	vendor = vendor_;
	return image("good-2.0.0.fw", model, "2.0.0", "ok", -1, k->vendor_priv, 0) ||
	       image("crash-loop.fw", model, "2.0.1-crash", "crash_loop", -1, k->vendor_priv, 0) ||
	       image("no-gnss.fw", model, "2.0.1-nognss", "no_gnss", -1, k->vendor_priv, 0) ||
	       image("no-modem.fw", model, "2.0.1-nomodem", "no_modem", -1, k->vendor_priv, 0) ||
	       image("corrupt-payload.fw", model, "2.0.0", "ok", PAYLOAD_SIZE / 2, k->vendor_priv, 0) ||
	       image("bad-signature.fw", model, "2.0.0", "ok", -1, k->other_priv, 0) ||
	       image("wrong-model.fw", other_model, "2.0.0", "ok", -1, k->vendor_priv, 0) ||
	       image("truncated.fw", model, "2.0.0", "ok", -1, k->vendor_priv, FWIMAGE_HEADER_SIZE + PAYLOAD_SIZE / 2) ||
	       image("unsigned.fw", model, "2.0.0", "ok", -1, NULL, 0);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: fwgen DIR [VENDOR:MODEL...]\n");
		return 2;
	}
	out_dir = argv[1];
	if (snprintf(set_dir, sizeof set_dir, "%s", out_dir) >= (int)sizeof set_dir)
		return die(out_dir, "path too long");
	if (make_dirs(out_dir))
		return die(out_dir, strerror(errno));
	struct keys k = { 0 };
	int rc = make_key("trackrig test vendor key 1", &k.vendor_priv, &k.vendor_pub) ||
		 make_key("trackrig test attacker key 1", &k.other_priv, &k.other_pub) ||
		 write_bytes("vendor.key.pem", k.vendor_priv, strlen(k.vendor_priv)) ||
		 write_bytes("vendor.pub.pem", k.vendor_pub, strlen(k.vendor_pub)) ||
		 write_bytes("other.key.pem", k.other_priv, strlen(k.other_priv)) ||
		 write_bytes("other.pub.pem", k.other_pub, strlen(k.other_pub)) ||
		 write_set(&k, "Teltonika", "FMB920", "FMB130");
	for (int i = 2; !rc && i < argc; i++) {
		char v[64], m[64];
		const char *colon = strchr(argv[i], ':');
		if (!colon || colon == argv[i] || !colon[1] || strchr(colon + 1, '/') || colon[1] == '.' ||
		    colon - argv[i] >= (long)sizeof v || strlen(colon + 1) >= sizeof m) {
			rc = die(argv[i], "expected VENDOR:MODEL (a model is a folder name: no '/')");
			break;
		}
		snprintf(v, sizeof v, "%.*s", (int)(colon - argv[i]), argv[i]);
		snprintf(m, sizeof m, "%s", colon + 1);
		if (snprintf(set_dir, sizeof set_dir, "%s/%s", out_dir, m) >= (int)sizeof set_dir)
			rc = die(out_dir, "path too long");
		else if (make_dirs(set_dir))
			rc = die(set_dir, strerror(errno));
		else
			rc = write_set(&k, v, m, strcmp(v, "Teltonika") ? "AT-000" : "FMB130");
	}
	free(k.vendor_priv);
	free(k.vendor_pub);
	free(k.other_priv);
	free(k.other_pub);
	return rc ? 1 : 0;
}
