/* SPDX-License-Identifier: MIT */
/*
 * snapimage.c: fuzz target for the snapshot image decoder (the bytes a
 * start reads back from the store). gw_image_decode() takes the input as
 * it is; when it accepts it, the snapshot is encoded again and that image
 * decoded once more. Invariants: a rejection leaves nothing behind (no
 * snapshot, no map); an accepted image round-trips to byte-equal images
 * (the decoder keeps everything the encoder writes), and the decoded
 * snapshot renders as JSON. The digest the store checks first is not
 * involved: this is what stands behind it.
 * Built with -fsanitize=fuzzer it is a libFuzzer target; the replay build
 * (mk/fuzz-replay.c) runs it over tests/fuzz/corpus/snapimage/.
 */
#include <stdlib.h>
#include <string.h>

#include "gwapi/reconcile.h"
#include "gwapi/snapimage.h"
#include "proxy/snapshot_types.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct gw_image a, b;
	uint8_t *p = NULL, *q = NULL;
	size_t n = 0, m = 0;
	char *json;

	if (gw_image_decode(data, size, &a) != 0) {
		if (a.snap || a.gateways || a.addresses || a.n_gateways)
			abort();
		return 0;
	}
	if (!a.snap || gw_image_encode(a.snap, a.gateways, a.addresses, a.n_gateways, &p, &n))
		abort();
	if (gw_image_decode(p, n, &b) != 0 ||
	    gw_image_encode(b.snap, b.gateways, b.addresses, b.n_gateways, &q, &m) != 0 ||
	    m != n || memcmp(p, q, n) != 0)
		abort();
	json = gw_snapshot_to_json(b.snap);
	if (!json)
		abort();
	free(json);
	gw_image_buf_free(p, n);
	gw_image_buf_free(q, m);
	gw_image_fini(&a);
	gw_image_fini(&b);
	return 0;
}
