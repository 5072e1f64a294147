/* SPDX-License-Identifier: MIT */
/*
 * snapimage.h: a compiled snapshot as a self-contained byte image, so the
 * store can keep, beside each revision, exactly what was served and a
 * restart can serve it again without re-reading the objects and
 * re-running reconcile. Unlike gw_snapshot_to_json (a description for
 * people) the image holds everything the data plane needs, key material
 * included: it is stored, never shown. Any thread.
 */
#ifndef WG_GWAPI_SNAPIMAGE_H
#define WG_GWAPI_SNAPIMAGE_H

#include <stddef.h>
#include <stdint.h>

struct snapshot;

/* A decoded image: the snapshot (refs = 1, its own arena; the owner of
 * this struct holds that reference) and the Gateway -> address map that
 * was in force when it was compiled (gw_result's gateways/addresses). */
struct gw_image {
	struct snapshot *snap;
	char **gateways;
	char **addresses;
	size_t n_gateways;
};

/*
 * Encodes snap (its revision and compile time are left out: equal input
 * gives equal bytes) and the Gateway -> address map into a new buffer
 * *out of *len bytes. Arrays shared inside the snapshot (a rule's
 * backends used by several matches) stay shared after decoding. The caller
 * frees *out with gw_image_buf_free (it holds private keys). 0 or -ENOMEM.
 */
int gw_image_encode(const struct snapshot *snap, char *const *gateways, char *const *addresses,
		    size_t n_gateways, uint8_t **out, size_t *len);
/* Wipes and frees an encoded image; NULL is fine. */
void gw_image_buf_free(uint8_t *p, size_t len);

/*
 * Decodes len bytes at p into img (revision 0, compiled_ms 0). -EINVAL
 * when the bytes are not an image of this format version and byte order,
 * are truncated, or do not describe a consistent snapshot (an index out of
 * range, a count larger than the bytes left); -ENOMEM. On failure img is
 * left empty. Release with gw_image_fini.
 */
int gw_image_decode(const uint8_t *p, size_t len, struct gw_image *img);
/* Drops img's snapshot reference and frees the address map. */
void gw_image_fini(struct gw_image *img);

#endif
