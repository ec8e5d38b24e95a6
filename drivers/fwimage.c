/*
 * fwimage.c - trackrig firmware images: parse, pack, sign, verify (see
 * fwimage.h and docs/firmware.md).
 *
 * Every header read goes through fixed offsets inside a buffer whose length
 * was checked first; sizes from the header are compared with what is really
 * there before anything is hashed or signed. libcrypto does the SHA-256 and
 * Ed25519; its error queue is drained into our message so nothing is lost.
 */
#include "fwimage.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

/* Byte offsets in the header (fwimage.h, docs/firmware.md). */
enum {
	OFF_MAGIC = 0,
	OFF_FORMAT = 8,
	OFF_HSIZE = 10,
	OFF_FLAGS = 12,
	OFF_VENDOR = 16,
	OFF_MODEL = 48,
	OFF_VERSION = 80,
	OFF_BUILD = 112,
	OFF_PSIZE = 120,
	OFF_SHA = 128,
	OFF_SIGALG = 160,
	OFF_SIGSIZE = 162,
	OFF_RESERVED = 164,
	OFF_CRC = 172,
};

/* ---- errors --------------------------------------------------------------- */

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* The oldest libcrypto error as text (and the queue emptied), so a failed
 * key load says "no start line" rather than just "failed". */
static const char *crypto_reason(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	if (!e)
		snprintf(buf, len, "no detail from libcrypto");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

const char *fwimage_strerror(int err)
{
	switch (err) {
	case FWIMAGE_OK: return "ok";
	case FWIMAGE_ERR_FORMAT: return "malformed header";
	case FWIMAGE_ERR_TRUNCATED: return "truncated";
	case FWIMAGE_ERR_TRAILING: return "trailing bytes";
	case FWIMAGE_ERR_HASH: return "hash mismatch";
	case FWIMAGE_ERR_UNSIGNED: return "unsigned";
	case FWIMAGE_ERR_SIGNATURE: return "bad signature";
	case FWIMAGE_ERR_MODEL: return "wrong model";
	case FWIMAGE_ERR_KEY: return "unusable key";
	case FWIMAGE_ERR_ARG: return "invalid argument";
	case FWIMAGE_ERR_NOMEM: return "out of memory";
	case FWIMAGE_ERR_CRYPTO: return "crypto failure";
	}
	return "unknown error";
}

/* ---- big-endian fields and CRC --------------------------------------------- */

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

/* Bitwise: it only ever runs over 172 header bytes, not worth a table. */
uint32_t fwimage_crc32(const uint8_t *data, size_t len)
{
	uint32_t crc = 0xFFFFFFFFu;
	for (size_t i = 0; i < len; i++) {
		crc ^= data[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

char *fwimage_sha256_hex(const uint8_t digest[FWIMAGE_SHA256_SIZE], char out[65])
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < FWIMAGE_SHA256_SIZE; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 15];
	}
	out[64] = '\0';
	return out;
}

/* ---- header ----------------------------------------------------------------- */

/* A string field: 1..31 printable ASCII bytes, then NULs to the end, so no
 * field can hide bytes after its terminator or run into the next one. */
static int parse_field(const uint8_t *buf, int off, const char *name, char out[FWIMAGE_FIELD_SIZE], char *err,
		       size_t errlen)
{
	const uint8_t *f = buf + off;
	int n = 0;
	while (n < FWIMAGE_FIELD_SIZE && f[n])
		n++;
	if (n == 0)
		return fail(err, errlen, FWIMAGE_ERR_FORMAT, "malformed header: %s (byte %d) is empty", name, off);
	if (n == FWIMAGE_FIELD_SIZE)
		return fail(err, errlen, FWIMAGE_ERR_FORMAT,
			    "malformed header: %s (bytes %d..%d) is not NUL-terminated", name, off,
			    off + FWIMAGE_FIELD_SIZE - 1);
	for (int i = 0; i < n; i++)
		if (f[i] < 0x20 || f[i] > 0x7E)
			return fail(err, errlen, FWIMAGE_ERR_FORMAT,
				    "malformed header: %s has a non-printable byte 0x%02x at byte %d", name, f[i],
				    off + i);
	for (int i = n; i < FWIMAGE_FIELD_SIZE; i++)
		if (f[i])
			return fail(err, errlen, FWIMAGE_ERR_FORMAT,
				    "malformed header: %s has a nonzero byte 0x%02x after its end, at byte %d", name,
				    f[i], off + i);
	memcpy(out, f, (size_t)n + 1);
	return FWIMAGE_OK;
}

int fwimage_header_parse(const uint8_t *buf, size_t len, struct fwimage_header *h, char *err, size_t errlen)
{
	if (!buf || !h)
		return fail(err, errlen, FWIMAGE_ERR_ARG, "fwimage_header_parse: NULL argument");
	memset(h, 0, sizeof *h);
	/* The magic first, even on a short buffer: "not an image" says more
	 * than "too short" about a random file. */
	size_t mlen = len < FWIMAGE_MAGIC_SIZE ? len : FWIMAGE_MAGIC_SIZE;
	for (size_t i = 0; i < mlen; i++)
		if (buf[i] != (uint8_t)FWIMAGE_MAGIC[i])
			return fail(err, errlen, FWIMAGE_ERR_FORMAT,
				    "malformed header: bad magic at byte %zu (0x%02x, expected 0x%02x): not a "
				    "trackrig firmware image",
				    i, buf[i], (uint8_t)FWIMAGE_MAGIC[i]);
	if (len < FWIMAGE_HEADER_SIZE)
		return fail(err, errlen, FWIMAGE_ERR_FORMAT,
			    "malformed header: only %zu of its %d bytes are there (file cut short)", len,
			    FWIMAGE_HEADER_SIZE);
	h->format_version = get16(buf + OFF_FORMAT);
	if (h->format_version != FWIMAGE_FORMAT_VERSION)
		return fail(err, errlen, FWIMAGE_ERR_FORMAT,
			    "malformed header: format version %u at byte %d (this rig reads version %d)",
			    h->format_version, OFF_FORMAT, FWIMAGE_FORMAT_VERSION);
	h->header_size = get16(buf + OFF_HSIZE);
	if (h->header_size != FWIMAGE_HEADER_SIZE)
		return fail(err, errlen, FWIMAGE_ERR_FORMAT,
			    "malformed header: header size %u at byte %d (format 1 headers are %d bytes)",
			    h->header_size, OFF_HSIZE, FWIMAGE_HEADER_SIZE);
	/* CRC before the fields: a damaged header is reported as damaged, not
	 * as whichever field the damage happened to hit. */
	h->header_crc = get32(buf + OFF_CRC);
	uint32_t crc = fwimage_crc32(buf, OFF_CRC);
	if (crc != h->header_crc)
		return fail(err, errlen, FWIMAGE_ERR_FORMAT,
			    "malformed header: CRC-32 at byte %d is %08" PRIx32 ", bytes 0..%d give %08" PRIx32
			    " (header damaged)",
			    OFF_CRC, h->header_crc, OFF_CRC - 1, crc);
	h->flags = get32(buf + OFF_FLAGS);
	if (h->flags)
		return fail(err, errlen, FWIMAGE_ERR_FORMAT,
			    "malformed header: flags at byte %d are 0x%08" PRIx32 " (format 1 defines none)",
			    OFF_FLAGS, h->flags);
	int rc;
	if ((rc = parse_field(buf, OFF_VENDOR, "vendor", h->vendor, err, errlen)) ||
	    (rc = parse_field(buf, OFF_MODEL, "model", h->model, err, errlen)) ||
	    (rc = parse_field(buf, OFF_VERSION, "version", h->version, err, errlen)))
		return rc;
	h->build_time = get64(buf + OFF_BUILD);
	h->payload_size = get64(buf + OFF_PSIZE);
	if (h->payload_size == 0 || h->payload_size > FWIMAGE_PAYLOAD_MAX)
		return fail(err, errlen, FWIMAGE_ERR_FORMAT,
			    "malformed header: payload size %" PRIu64 " at byte %d is outside 1..%u", h->payload_size,
			    OFF_PSIZE, FWIMAGE_PAYLOAD_MAX);
	memcpy(h->payload_sha256, buf + OFF_SHA, FWIMAGE_SHA256_SIZE);
	h->sig_alg = get16(buf + OFF_SIGALG);
	h->sig_size = get16(buf + OFF_SIGSIZE);
	bool none = h->sig_alg == FWIMAGE_SIG_NONE && h->sig_size == 0;
	bool ed = h->sig_alg == FWIMAGE_SIG_ED25519 && h->sig_size == FWIMAGE_ED25519_SIZE;
	if (!none && !ed)
		return fail(err, errlen, FWIMAGE_ERR_FORMAT,
			    "malformed header: signature algorithm %u with size %u at bytes %d..%d (expected 0/0 "
			    "unsigned or 1/64 Ed25519)",
			    h->sig_alg, h->sig_size, OFF_SIGALG, OFF_SIGSIZE + 1);
	for (int i = OFF_RESERVED; i < OFF_CRC; i++)
		if (buf[i])
			return fail(err, errlen, FWIMAGE_ERR_FORMAT,
				    "malformed header: reserved byte %d is 0x%02x, must be 0", i, buf[i]);
	return FWIMAGE_OK;
}

static int put_field(uint8_t *out, int off, const char *name, const char *s, char *err, size_t errlen)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n >= FWIMAGE_FIELD_SIZE)
		return fail(err, errlen, FWIMAGE_ERR_ARG, "%s must be 1..%d characters (got %zu)", name,
			    FWIMAGE_FIELD_SIZE - 1, n);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7E)
			return fail(err, errlen, FWIMAGE_ERR_ARG, "%s has a non-printable character at %zu", name, i);
	memset(out + off, 0, FWIMAGE_FIELD_SIZE);
	memcpy(out + off, s, n);
	return FWIMAGE_OK;
}

int fwimage_header_encode(struct fwimage_header *h, uint8_t out[FWIMAGE_HEADER_SIZE], char *err, size_t errlen)
{
	uint8_t b[FWIMAGE_HEADER_SIZE] = { 0 };
	int rc;
	if ((rc = put_field(b, OFF_VENDOR, "vendor", h->vendor, err, errlen)) ||
	    (rc = put_field(b, OFF_MODEL, "model", h->model, err, errlen)) ||
	    (rc = put_field(b, OFF_VERSION, "version", h->version, err, errlen)))
		return rc;
	if (h->payload_size == 0 || h->payload_size > FWIMAGE_PAYLOAD_MAX)
		return fail(err, errlen, FWIMAGE_ERR_ARG, "payload size %" PRIu64 " is outside 1..%u",
			    h->payload_size, FWIMAGE_PAYLOAD_MAX);
	h->format_version = FWIMAGE_FORMAT_VERSION;
	h->header_size = FWIMAGE_HEADER_SIZE;
	memcpy(b + OFF_MAGIC, FWIMAGE_MAGIC, FWIMAGE_MAGIC_SIZE);
	put16(b + OFF_FORMAT, h->format_version);
	put16(b + OFF_HSIZE, h->header_size);
	put32(b + OFF_FLAGS, h->flags);
	put64(b + OFF_BUILD, h->build_time);
	put64(b + OFF_PSIZE, h->payload_size);
	memcpy(b + OFF_SHA, h->payload_sha256, FWIMAGE_SHA256_SIZE);
	put16(b + OFF_SIGALG, h->sig_alg);
	put16(b + OFF_SIGSIZE, h->sig_size);
	h->header_crc = fwimage_crc32(b, OFF_CRC);
	put32(b + OFF_CRC, h->header_crc);
	memcpy(out, b, sizeof b);
	return FWIMAGE_OK;
}

uint64_t fwimage_image_size(const struct fwimage_header *h)
{
	return (uint64_t)FWIMAGE_HEADER_SIZE + h->payload_size + h->sig_size;
}

static int sha256(const uint8_t *data, size_t len, uint8_t md[FWIMAGE_SHA256_SIZE], char *err, size_t errlen)
{
	unsigned int mdlen = 0;
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != FWIMAGE_SHA256_SIZE) {
		char why[160];
		return fail(err, errlen, FWIMAGE_ERR_CRYPTO, "SHA-256 failed: %s", crypto_reason(why, sizeof why));
	}
	return FWIMAGE_OK;
}

/* ---- pack and sign ----------------------------------------------------------- */

int fwimage_pack(const char *vendor, const char *model, const char *version, uint64_t build_time,
		 const uint8_t *payload, size_t payload_len, uint8_t **out, size_t *outlen, char *err,
		 size_t errlen)
{
	*out = NULL;
	*outlen = 0;
	if (!payload || payload_len == 0 || payload_len > FWIMAGE_PAYLOAD_MAX)
		return fail(err, errlen, FWIMAGE_ERR_ARG, "payload must be 1..%u bytes (got %zu)",
			    FWIMAGE_PAYLOAD_MAX, payload_len);
	struct fwimage_header h = { .build_time = build_time, .payload_size = payload_len };
	/* Lengths are checked by the encoder; snprintf only guards the copy. */
	if (strlen(vendor) >= sizeof h.vendor || strlen(model) >= sizeof h.model ||
	    strlen(version) >= sizeof h.version)
		return fail(err, errlen, FWIMAGE_ERR_ARG, "vendor, model and version must be 1..%d characters",
			    FWIMAGE_FIELD_SIZE - 1);
	snprintf(h.vendor, sizeof h.vendor, "%s", vendor);
	snprintf(h.model, sizeof h.model, "%s", model);
	snprintf(h.version, sizeof h.version, "%s", version);
	int rc = sha256(payload, payload_len, h.payload_sha256, err, errlen);
	if (rc)
		return rc;
	uint8_t head[FWIMAGE_HEADER_SIZE];
	if ((rc = fwimage_header_encode(&h, head, err, errlen)))
		return rc;
	uint8_t *img = malloc(FWIMAGE_HEADER_SIZE + payload_len);
	if (!img)
		return fail(err, errlen, FWIMAGE_ERR_NOMEM, "out of memory for a %zu-byte image",
			    FWIMAGE_HEADER_SIZE + payload_len);
	memcpy(img, head, FWIMAGE_HEADER_SIZE);
	memcpy(img + FWIMAGE_HEADER_SIZE, payload, payload_len);
	*out = img;
	*outlen = FWIMAGE_HEADER_SIZE + payload_len;
	return FWIMAGE_OK;
}

/* Loads an Ed25519 key from PEM text: private when PRIV, else public. */
static int load_key(const char *pem, size_t len, bool priv, EVP_PKEY **out, char *err, size_t errlen)
{
	*out = NULL;
	const char *what = priv ? "private key" : "public key";
	if (!pem || len == 0 || len > (size_t)1 << 20)
		return fail(err, errlen, FWIMAGE_ERR_KEY, "%s: empty or oversized PEM", what);
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return fail(err, errlen, FWIMAGE_ERR_NOMEM, "%s: out of memory", what);
	EVP_PKEY *k = priv ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	char why[160];
	if (!k)
		return fail(err, errlen, FWIMAGE_ERR_KEY, "%s: not a readable PEM %s (%s)", what,
			    priv ? "PKCS#8 private key" : "SubjectPublicKeyInfo", crypto_reason(why, sizeof why));
	if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(k);
		return fail(err, errlen, FWIMAGE_ERR_KEY, "%s: not an Ed25519 key (type %s)", what,
			    OBJ_nid2sn(EVP_PKEY_get_id(k)));
	}
	*out = k;
	return FWIMAGE_OK;
}

int fwimage_sign(const uint8_t *img, size_t len, const char *key_pem, size_t key_len, uint8_t **out,
		 size_t *outlen, char *err, size_t errlen)
{
	*out = NULL;
	*outlen = 0;
	struct fwimage_header h;
	int rc = fwimage_header_parse(img, len, &h, err, errlen);
	if (rc)
		return rc;
	/* The payload must be all there; an old signature may or may not be. */
	uint64_t body = FWIMAGE_HEADER_SIZE + h.payload_size;
	if (len < body)
		return fail(err, errlen, FWIMAGE_ERR_TRUNCATED,
			    "truncated: %zu bytes, the header announces %" PRIu64 " before the signature", len, body);
	if (len != body && len != fwimage_image_size(&h))
		return fail(err, errlen, FWIMAGE_ERR_TRAILING,
			    "trailing bytes: %zu bytes, the header announces %" PRIu64, len, fwimage_image_size(&h));
	EVP_PKEY *key;
	if ((rc = load_key(key_pem, key_len, true, &key, err, errlen)))
		return rc;
	uint8_t *signed_img = malloc(body + FWIMAGE_ED25519_SIZE);
	if (!signed_img) {
		EVP_PKEY_free(key);
		return fail(err, errlen, FWIMAGE_ERR_NOMEM, "out of memory");
	}
	h.sig_alg = FWIMAGE_SIG_ED25519;
	h.sig_size = FWIMAGE_ED25519_SIZE;
	rc = fwimage_header_encode(&h, signed_img, err, errlen);
	memcpy(signed_img + FWIMAGE_HEADER_SIZE, img + FWIMAGE_HEADER_SIZE, h.payload_size);
	EVP_MD_CTX *ctx = rc ? NULL : EVP_MD_CTX_new();
	size_t siglen = FWIMAGE_ED25519_SIZE;
	/* Ed25519 is one-shot over the whole message: no digest (NULL md). */
	if (!rc && (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
		    EVP_DigestSign(ctx, signed_img + body, &siglen, signed_img, body) != 1 ||
		    siglen != FWIMAGE_ED25519_SIZE)) {
		char why[160];
		rc = fail(err, errlen, FWIMAGE_ERR_CRYPTO, "signing failed: %s", crypto_reason(why, sizeof why));
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	if (rc) {
		free(signed_img);
		return rc;
	}
	*out = signed_img;
	*outlen = body + FWIMAGE_ED25519_SIZE;
	return FWIMAGE_OK;
}

/* ---- verify -------------------------------------------------------------------- */

/* Appends "; MSG" (or MSG when ERR is empty) so every failure is reported. */
static void add_err(char *err, size_t errlen, const char *msg)
{
	if (!err || !errlen)
		return;
	size_t used = strnlen(err, errlen);
	if (used + 1 >= errlen)
		return;
	snprintf(err + used, errlen - used, "%s%s", used ? "; " : "", msg);
}

/* Ed25519 over header + payload. Returns OK, SIGNATURE, KEY or CRYPTO. */
static int check_signature(const uint8_t *img, uint64_t body, const char *pub_pem, size_t pub_len, char *msg,
			   size_t msglen)
{
	EVP_PKEY *key;
	int rc = load_key(pub_pem, pub_len, false, &key, msg, msglen);
	if (rc)
		return rc;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int v = -1;
	if (ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1)
		v = EVP_DigestVerify(ctx, img + body, FWIMAGE_ED25519_SIZE, img, body);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	char why[160];
	if (v == 1) {
		snprintf(msg, msglen, "Ed25519 signature good");
		return FWIMAGE_OK;
	}
	if (v == 0) {
		ERR_clear_error();
		return fail(msg, msglen, FWIMAGE_ERR_SIGNATURE,
			    "bad signature: the Ed25519 signature at byte %" PRIu64
			    " does not verify with this public key (forged, altered, or signed by another key)",
			    body);
	}
	return fail(msg, msglen, FWIMAGE_ERR_CRYPTO, "signature check failed: %s", crypto_reason(why, sizeof why));
}

int fwimage_verify(const uint8_t *img, size_t len, const char *pub_pem, size_t pub_len, const char *model,
		   struct fwimage_report *report, char *err, size_t errlen)
{
	struct fwimage_report local, *r = report ? report : &local;
	memset(r, 0, sizeof *r);
	if (err && errlen)
		err[0] = '\0';
	int rc = fwimage_header_parse(img, len, &r->header, err, errlen);
	if (rc)
		return rc;
	r->header_ok = true;
	const struct fwimage_header *h = &r->header;
	int first = FWIMAGE_OK;
	uint64_t body = FWIMAGE_HEADER_SIZE + h->payload_size, want = fwimage_image_size(h);

	/* Size: everything else reads payload and signature at header offsets. */
	if (len < want) {
		r->size = FWIMAGE_CHECK_FAILED;
		snprintf(r->size_msg, sizeof r->size_msg,
			 "truncated: %zu bytes, the header announces %" PRIu64 " (%" PRIu64 " missing)", len, want,
			 want - len);
		first = FWIMAGE_ERR_TRUNCATED;
	} else if (len > want) {
		r->size = FWIMAGE_CHECK_FAILED;
		snprintf(r->size_msg, sizeof r->size_msg,
			 "trailing bytes: %zu bytes, the header announces %" PRIu64 " (%" PRIu64 " extra)", len, want,
			 len - want);
		first = FWIMAGE_ERR_TRAILING;
	} else {
		r->size = FWIMAGE_CHECK_OK;
		snprintf(r->size_msg, sizeof r->size_msg, "%" PRIu64 " bytes as announced", want);
	}
	if (r->size == FWIMAGE_CHECK_FAILED)
		add_err(err, errlen, r->size_msg);

	/* Hash: needs the whole payload; a truncated image may still hold it. */
	if (len >= body) {
		uint8_t md[FWIMAGE_SHA256_SIZE];
		char got[65], exp[65];
		if ((rc = sha256(img + FWIMAGE_HEADER_SIZE, h->payload_size, md, r->hash_msg, sizeof r->hash_msg)))
			return rc;
		if (memcmp(md, h->payload_sha256, sizeof md) != 0) {
			r->hash = FWIMAGE_CHECK_FAILED;
			snprintf(r->hash_msg, sizeof r->hash_msg,
				 "hash mismatch: payload SHA-256 is %s, header says %s", fwimage_sha256_hex(md, got),
				 fwimage_sha256_hex(h->payload_sha256, exp));
			add_err(err, errlen, r->hash_msg);
			if (!first)
				first = FWIMAGE_ERR_HASH;
		} else {
			r->hash = FWIMAGE_CHECK_OK;
			snprintf(r->hash_msg, sizeof r->hash_msg, "payload SHA-256 %s matches",
				 fwimage_sha256_hex(md, got));
		}
	} else {
		snprintf(r->hash_msg, sizeof r->hash_msg, "not checked: payload incomplete");
	}

	/* Signature. */
	if (h->sig_alg == FWIMAGE_SIG_NONE) {
		r->signature = FWIMAGE_CHECK_FAILED;
		snprintf(r->signature_msg, sizeof r->signature_msg,
			 "unsigned: the header says no signature (packed but never signed)");
		add_err(err, errlen, r->signature_msg);
		if (!first)
			first = FWIMAGE_ERR_UNSIGNED;
	} else if (r->size != FWIMAGE_CHECK_OK) {
		snprintf(r->signature_msg, sizeof r->signature_msg, "not checked: image size wrong");
	} else if (!pub_pem) {
		snprintf(r->signature_msg, sizeof r->signature_msg, "not checked: no public key");
	} else {
		rc = check_signature(img, body, pub_pem, pub_len, r->signature_msg, sizeof r->signature_msg);
		if (rc == FWIMAGE_ERR_KEY || rc == FWIMAGE_ERR_CRYPTO) {
			if (err && errlen)
				snprintf(err, errlen, "%s", r->signature_msg);
			return rc;
		}
		r->signature = rc ? FWIMAGE_CHECK_FAILED : FWIMAGE_CHECK_OK;
		if (rc) {
			add_err(err, errlen, r->signature_msg);
			if (!first)
				first = rc;
		}
	}

	/* Model: exact match; a device never guesses that a close name fits. */
	if (model) {
		if (strcmp(model, h->model) != 0) {
			r->model = FWIMAGE_CHECK_FAILED;
			snprintf(r->model_msg, sizeof r->model_msg, "wrong model: image is for %s, device is %.40s",
				 h->model, model);
			add_err(err, errlen, r->model_msg);
			if (!first)
				first = FWIMAGE_ERR_MODEL;
		} else {
			r->model = FWIMAGE_CHECK_OK;
			snprintf(r->model_msg, sizeof r->model_msg, "model %s matches", h->model);
		}
	} else {
		snprintf(r->model_msg, sizeof r->model_msg, "not checked: no model given (image is for %s)", h->model);
	}
	return first;
}

/* ---- behaviour markers ------------------------------------------------------ */

bool fwimage_payload_behaviour(const uint8_t *payload, size_t len, char *out, size_t cap)
{
	static const char key[] = "behaviour=";
	const size_t klen = sizeof key - 1;
	size_t span = len < FWIMAGE_MARKER_SPAN ? len : FWIMAGE_MARKER_SPAN;
	if (cap)
		snprintf(out, cap, "ok");
	for (size_t line = 0; line < span;) {
		size_t end = line;
		while (end < span && payload[end] != '\n')
			end++;
		if (end - line > klen && memcmp(payload + line, key, klen) == 0) {
			size_t n = end - line - klen;
			if (n && payload[line + klen + n - 1] == '\r')
				n--;
			if (cap) {
				if (n >= cap)
					n = cap - 1;
				memcpy(out, payload + line + klen, n);
				out[n] = '\0';
			}
			return true;
		}
		line = end + 1;
	}
	return false;
}

/* ---- streaming -------------------------------------------------------------------- */

int fwimage_stream_init(struct fwimage_stream *s, const char *model, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	if (model && strlen(model) >= sizeof s->model)
		return s->failed = fail(err, errlen, FWIMAGE_ERR_ARG, "model '%.40s' is too long", model);
	if (model)
		snprintf(s->model, sizeof s->model, "%s", model);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		char why[160];
		return s->failed = fail(err, errlen, FWIMAGE_ERR_CRYPTO, "SHA-256 init failed: %s",
					crypto_reason(why, sizeof why));
	}
	s->sha = ctx;
	return FWIMAGE_OK;
}

uint64_t fwimage_stream_expected(const struct fwimage_stream *s)
{
	return s->have_header ? fwimage_image_size(&s->header) : 0;
}

int fwimage_stream_feed(struct fwimage_stream *s, const uint8_t *buf, size_t n, char *err, size_t errlen)
{
	if (s->failed)
		return fail(err, errlen, s->failed, "stream already failed (%s)", fwimage_strerror(s->failed));
	while (n > 0) {
		if (!s->have_header) {
			size_t take = FWIMAGE_HEADER_SIZE - (size_t)s->received;
			if (take > n)
				take = n;
			memcpy(s->head + s->received, buf, take);
			s->received += take;
			buf += take;
			n -= take;
			/* The magic is checked on a partial header too: a device
			 * fetching an HTML error page stops at byte 0. */
			if (s->received < FWIMAGE_HEADER_SIZE) {
				size_t m = s->received < FWIMAGE_MAGIC_SIZE ? (size_t)s->received : FWIMAGE_MAGIC_SIZE;
				if (memcmp(s->head, FWIMAGE_MAGIC, m) != 0)
					return s->failed = fwimage_header_parse(s->head, (size_t)s->received,
										&s->header, err, errlen);
				continue;
			}
			int rc = fwimage_header_parse(s->head, FWIMAGE_HEADER_SIZE, &s->header, err, errlen);
			if (rc)
				return s->failed = rc;
			if (*s->model && strcmp(s->model, s->header.model) != 0)
				return s->failed = fail(err, errlen, FWIMAGE_ERR_MODEL,
							"wrong model: image is for %s, device is %s", s->header.model,
							s->model);
			s->have_header = true;
			continue;
		}
		uint64_t want = fwimage_image_size(&s->header);
		if (s->received + n > want)
			return s->failed = fail(err, errlen, FWIMAGE_ERR_TRAILING,
						"trailing bytes: %" PRIu64 " bytes received, the header announces %" PRIu64,
						s->received + n, want);
		/* Only payload bytes go into the hash; the signature does not. */
		uint64_t body = FWIMAGE_HEADER_SIZE + s->header.payload_size;
		size_t hashed = s->received < body ? (size_t)(body - s->received < n ? body - s->received : n) : 0;
		if (hashed && EVP_DigestUpdate(s->sha, buf, hashed) != 1) {
			char why[160];
			return s->failed = fail(err, errlen, FWIMAGE_ERR_CRYPTO, "SHA-256 update failed: %s",
						crypto_reason(why, sizeof why));
		}
		s->received += n;
		n = 0;
	}
	return FWIMAGE_OK;
}

int fwimage_stream_finish(struct fwimage_stream *s, char *err, size_t errlen)
{
	if (s->failed)
		return fail(err, errlen, s->failed, "stream already failed (%s)", fwimage_strerror(s->failed));
	if (!s->have_header)
		return s->failed = fail(err, errlen, FWIMAGE_ERR_TRUNCATED,
					"truncated: %" PRIu64 " bytes received, the header alone is %d",
					s->received, FWIMAGE_HEADER_SIZE);
	uint64_t want = fwimage_image_size(&s->header);
	if (s->received < want)
		return s->failed = fail(err, errlen, FWIMAGE_ERR_TRUNCATED,
					"truncated: %" PRIu64 " bytes received, the header announces %" PRIu64,
					s->received, want);
	uint8_t md[FWIMAGE_SHA256_SIZE];
	unsigned int mdlen = 0;
	if (EVP_DigestFinal_ex(s->sha, md, &mdlen) != 1) {
		char why[160];
		return s->failed = fail(err, errlen, FWIMAGE_ERR_CRYPTO, "SHA-256 final failed: %s",
					crypto_reason(why, sizeof why));
	}
	if (memcmp(md, s->header.payload_sha256, sizeof md) != 0) {
		char got[65], exp[65];
		return s->failed = fail(err, errlen, FWIMAGE_ERR_HASH,
					"hash mismatch: payload SHA-256 is %s, header says %s",
					fwimage_sha256_hex(md, got), fwimage_sha256_hex(s->header.payload_sha256, exp));
	}
	return FWIMAGE_OK;
}

void fwimage_stream_free(struct fwimage_stream *s)
{
	EVP_MD_CTX_free(s->sha);
	s->sha = NULL;
}
