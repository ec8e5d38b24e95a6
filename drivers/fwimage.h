/*
 * fwimage.h - trackrig firmware images: a fixed header, the payload, and an
 * Ed25519 signature by the vendor key over header + payload.
 *
 * Both ends use it: the rig packs, signs, inspects and verifies images; the
 * simulated rack's devices verify what they download before writing a bank.
 * So it lives in drivers/ and works on memory only (keys are PEM text, not
 * paths): no files, no sockets.
 *
 * Layout (all integers big-endian; docs/firmware.md has it byte by byte):
 *
 *   0   magic "TRKFW1\0\0"          8
 *   8   format version (1)          2
 *   10  header size (176)           2
 *   12  flags (0, reserved)         4
 *   16  vendor  (NUL-padded ASCII)  32
 *   48  model   (NUL-padded ASCII)  32
 *   80  version (NUL-padded ASCII)  32
 *   112 build time, Unix seconds    8
 *   120 payload size                8
 *   128 SHA-256 of the payload      32
 *   160 signature algorithm         2   0 unsigned, 1 Ed25519
 *   162 signature size              2   0 unsigned, 64 Ed25519
 *   164 reserved, zero              8
 *   172 CRC-32 of bytes 0..171      4
 *   176 payload, then the signature over bytes 0 .. 176 + payload size - 1
 *
 * The header CRC tells a damaged header (a malformed file) from a forged
 * one (a bad signature) and lets a device refuse a download from its first
 * 176 bytes. The signature fields sit inside the signed header, so a
 * signature cannot be stripped without the image saying it is unsigned.
 *
 * Parsing never trusts a size: every field is checked before it is used,
 * and an image must be exactly header + payload size + signature size.
 * Every function returns FWIMAGE_OK (0) or a negative enum fwimage_err and
 * writes a message naming what is wrong and at which byte into ERR (which
 * may be NULL).
 */
#ifndef TRACKRIG_FWIMAGE_H
#define TRACKRIG_FWIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FWIMAGE_MAGIC "TRKFW1\0\0"
#define FWIMAGE_MAGIC_SIZE 8
#define FWIMAGE_FORMAT_VERSION 1
#define FWIMAGE_HEADER_SIZE 176
#define FWIMAGE_FIELD_SIZE 32          /* vendor, model, version: at most 31 chars */
#define FWIMAGE_SIG_NONE 0
#define FWIMAGE_SIG_ED25519 1
#define FWIMAGE_ED25519_SIZE 64
#define FWIMAGE_PAYLOAD_MAX (64u << 20) /* 64 MiB: above any tracker's flash bank */
#define FWIMAGE_IMAGE_MAX (FWIMAGE_HEADER_SIZE + FWIMAGE_PAYLOAD_MAX + FWIMAGE_ED25519_SIZE)
#define FWIMAGE_SHA256_SIZE 32
/* The simulated device reads behaviour markers from this much of the payload. */
#define FWIMAGE_MARKER_SPAN 4096

enum fwimage_err {
	FWIMAGE_OK = 0,
	FWIMAGE_ERR_FORMAT = -1,    /* header malformed: magic, version, sizes, strings, CRC */
	FWIMAGE_ERR_TRUNCATED = -2, /* fewer bytes than the header announces */
	FWIMAGE_ERR_TRAILING = -3,  /* more bytes than the header announces */
	FWIMAGE_ERR_HASH = -4,      /* payload SHA-256 differs from the header's */
	FWIMAGE_ERR_UNSIGNED = -5,  /* no signature (packed, never signed) */
	FWIMAGE_ERR_SIGNATURE = -6, /* signature does not verify with the key */
	FWIMAGE_ERR_MODEL = -7,     /* built for another model */
	FWIMAGE_ERR_KEY = -8,       /* key PEM unreadable or not Ed25519 */
	FWIMAGE_ERR_ARG = -9,       /* bad argument (field too long, empty payload, ...) */
	FWIMAGE_ERR_NOMEM = -10,
	FWIMAGE_ERR_CRYPTO = -11,   /* libcrypto failed for another reason */
};

struct fwimage_header {
	uint16_t format_version;
	uint16_t header_size;
	uint32_t flags;
	char vendor[FWIMAGE_FIELD_SIZE];   /* NUL-terminated */
	char model[FWIMAGE_FIELD_SIZE];
	char version[FWIMAGE_FIELD_SIZE];
	uint64_t build_time;               /* Unix seconds */
	uint64_t payload_size;
	uint8_t payload_sha256[FWIMAGE_SHA256_SIZE];
	uint16_t sig_alg;                  /* FWIMAGE_SIG_NONE or FWIMAGE_SIG_ED25519 */
	uint16_t sig_size;                 /* 0 or FWIMAGE_ED25519_SIZE */
	uint32_t header_crc;
};

/* Short name of an error code ("hash mismatch", "bad signature", ...). */
const char *fwimage_strerror(int err);

/* CRC-32 (ISO-HDLC, the zlib one): check("123456789") = 0xCBF43926. */
uint32_t fwimage_crc32(const uint8_t *data, size_t len);

/* Parses the header at the start of BUF (LEN bytes available: fewer than
 * FWIMAGE_HEADER_SIZE is FWIMAGE_ERR_FORMAT naming how many are missing).
 * Checks magic, format version, header size, reserved bytes, the three
 * strings (1..31 printable ASCII, NUL-padded), payload size (1..
 * FWIMAGE_PAYLOAD_MAX), signature fields and the CRC. Reads nothing past
 * FWIMAGE_HEADER_SIZE. */
int fwimage_header_parse(const uint8_t *buf, size_t len, struct fwimage_header *h, char *err, size_t errlen);

/* Writes H as FWIMAGE_HEADER_SIZE bytes into OUT, computing the CRC (and
 * storing it in H). Magic, format version and header size are always the
 * current ones. Returns FWIMAGE_ERR_ARG for a field that does not fit. */
int fwimage_header_encode(struct fwimage_header *h, uint8_t out[FWIMAGE_HEADER_SIZE], char *err, size_t errlen);

/* Bytes a whole image with header H must have: header + payload + signature. */
uint64_t fwimage_image_size(const struct fwimage_header *h);

/* Builds an unsigned image (header + payload) into a malloc'ed *OUT of
 * *OUTLEN bytes. VENDOR, MODEL, VERSION: 1..31 printable ASCII characters. */
int fwimage_pack(const char *vendor, const char *model, const char *version, uint64_t build_time,
		 const uint8_t *payload, size_t payload_len, uint8_t **out, size_t *outlen, char *err,
		 size_t errlen);

/* Signs IMG (a whole image, signed or not: an old signature is replaced)
 * with the Ed25519 private key in KEY_PEM (KEY_LEN bytes, PKCS#8 as openssl
 * genpkey writes it). The header is rewritten to say Ed25519 before
 * signing. Result malloc'ed into *OUT. The payload hash is not checked:
 * signing is the vendor's act, and tests need signed corrupt images. */
int fwimage_sign(const uint8_t *img, size_t len, const char *key_pem, size_t key_len, uint8_t **out,
		 size_t *outlen, char *err, size_t errlen);

/* One check's outcome in a fwimage_report. */
enum fwimage_check { FWIMAGE_CHECK_SKIPPED = 0, FWIMAGE_CHECK_OK = 1, FWIMAGE_CHECK_FAILED = 2 };

/* Everything fwimage_verify found, check by check, so a tool can say which
 * checks passed and which failed, and why. */
struct fwimage_report {
	bool header_ok;
	struct fwimage_header header;      /* valid when header_ok */
	enum fwimage_check size, hash, signature, model;
	char size_msg[160], hash_msg[200], signature_msg[200], model_msg[160];
};

/* Verifies a whole image: header, size, payload hash, signature with the
 * public key PUB_PEM (PUB_LEN bytes; SubjectPublicKeyInfo PEM), and, when
 * MODEL is not NULL, the model. PUB_PEM NULL skips the signature (inspect:
 * describe, do not judge); an unsigned image still fails. Every check that can run runs, and REPORT
 * (may be NULL) says how each went. Returns FWIMAGE_OK or the first failure
 * in this order: FORMAT, TRUNCATED/TRAILING, HASH, UNSIGNED/SIGNATURE, MODEL
 * (KEY when PUB_PEM is unusable); ERR gets every failure, "; "-separated. */
int fwimage_verify(const uint8_t *img, size_t len, const char *pub_pem, size_t pub_len, const char *model,
		   struct fwimage_report *report, char *err, size_t errlen);

/* Lowercase hex of the 32-byte digest into OUT (65 bytes). Returns OUT. */
char *fwimage_sha256_hex(const uint8_t digest[FWIMAGE_SHA256_SIZE], char out[65]);

/* Reads the behaviour marker "behaviour=VALUE" (a line of its own) in the
 * first FWIMAGE_MARKER_SPAN bytes of PAYLOAD into OUT. Returns true when
 * found; without one, OUT is "ok". Only the simulated device acts on it. */
bool fwimage_payload_behaviour(const uint8_t *payload, size_t len, char *out, size_t cap);

/* ---- streaming: a device downloading in chunks ---- */

/* Checks an image as its bytes arrive: the header as soon as its 176 bytes
 * are in (so a wrong model or an impossible size is refused before the
 * payload is fetched), the payload SHA-256 incrementally, and the exact
 * length. Ed25519 signs the whole message, not a digest, so the signature
 * is checked with fwimage_verify over the written bank once the stream is
 * complete. Fields are private. */
struct fwimage_stream {
	uint8_t head[FWIMAGE_HEADER_SIZE];
	uint64_t received;                 /* bytes fed so far */
	bool have_header;
	struct fwimage_header header;      /* valid once have_header */
	void *sha;                         /* EVP_MD_CTX */
	char model[FWIMAGE_FIELD_SIZE];    /* expected model, "" for any */
	int failed;                        /* first error, sticky */
};

/* Starts a stream; MODEL (may be NULL) is the model the device is. */
int fwimage_stream_init(struct fwimage_stream *s, const char *model, char *err, size_t errlen);

/* Feeds N more bytes. Returns FWIMAGE_OK, or an error that sticks: FORMAT
 * (header), MODEL (as soon as the header is in), TRAILING (more bytes than
 * announced). */
int fwimage_stream_feed(struct fwimage_stream *s, const uint8_t *buf, size_t n, char *err, size_t errlen);

/* Bytes the complete image has, once the header is in; 0 before. */
uint64_t fwimage_stream_expected(const struct fwimage_stream *s);

/* Ends the stream: TRUNCATED when bytes are missing, HASH when the payload
 * hash differs, else FWIMAGE_OK (signature still to check). */
int fwimage_stream_finish(struct fwimage_stream *s, char *err, size_t errlen);

/* Frees what the stream holds; safe after init failed and twice. */
void fwimage_stream_free(struct fwimage_stream *s);

#endif
