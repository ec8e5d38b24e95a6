/* fuzz_fwimage.c - firmware image headers and verification
 * (drivers/fwimage.c): the header parser, the whole-image check with a
 * vendor key, and the streaming check a device runs while downloading, fed
 * in chunks whose sizes come from the input itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fwimage.h"

/* The test vendor key the seeds in corpus/fwimage/ are signed with. */
static const char pub_pem[] = "-----BEGIN PUBLIC KEY-----\n"
			      "MCowBQYDK2VwAyEAg5VUfrMPTvQhyClcm34BSEKMqLzgF7t0gr/OwgRcbDU=\n"
			      "-----END PUBLIC KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], beh[64];
	struct fwimage_header h;
	if (fwimage_header_parse(data, size, &h, err, sizeof err) == 0)
		fwimage_image_size(&h);
	struct fwimage_report rep;
	fwimage_verify(data, size, pub_pem, sizeof pub_pem - 1, "FMB920", &rep, err, sizeof err);
	fwimage_verify(data, size, pub_pem, sizeof pub_pem - 1, NULL, &rep, err, sizeof err);
	if (size > FWIMAGE_HEADER_SIZE)
		fwimage_payload_behaviour(data + FWIMAGE_HEADER_SIZE, size - FWIMAGE_HEADER_SIZE, beh, sizeof beh);
	struct fwimage_stream s;
	if (fwimage_stream_init(&s, size & 1 ? "FMB920" : "", err, sizeof err) == 0) {
		size_t at = 0, step = size ? (size_t)data[0] % 97 + 1 : 1;
		while (at < size) {
			size_t n = size - at < step ? size - at : step;
			if (fwimage_stream_feed(&s, data + at, n, err, sizeof err) < 0)
				break;
			at += n;
		}
		fwimage_stream_expected(&s);
		fwimage_stream_finish(&s, err, sizeof err);
		fwimage_stream_free(&s);
	}
	return 0;
}
