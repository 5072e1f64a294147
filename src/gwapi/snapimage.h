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
 * *out of *len bytes. Values shared inside the snapshot (a rule's
 * backends used by several matches, a backend's TLS settings) are written
 * once and stay shared after decoding; values equal in every byte become
 * one. The caller frees *out with gw_image_buf_free (it holds private
 * keys). 0, -ENOMEM, or -EINVAL / -E2BIG / -EEXIST for a snapshot the
 * format cannot hold (values nested too deep, a record past 4 GB, two
 * values whose keys collide).
 */
int gw_image_encode(const struct snapshot *snap, char *const *gateways, char *const *addresses,
		    size_t n_gateways, uint8_t **out, size_t *len);

/*
 * The digest the store keeps for an image: a hash over the hashes of its
 * records. Bytes that are not an image of this format get a digest all
 * the same (a hash of them), which no image of it has but by chance.
 */
uint64_t gw_image_digest(const uint8_t *p, size_t len);

/*
 * The image of a run of snapshots that share most of their compiled rules
 * (the incremental reconcile's): each record's bytes and hash are kept
 * from one call to the next, a rule's are taken again for a rule equal in
 * every field, so a change costs what its rules cost plus a pass over the
 * kept hashes. gw_image_cache_update makes the records of snap and gives
 * the image's digest (gw_image_digest of the bytes that
 * gw_image_cache_bytes then writes into a new buffer, equal to
 * gw_image_encode's, which the caller frees with gw_image_buf_free). The
 * cache holds a reference to the last snapshot's memory (arena and shared
 * arena) and copies of its key material, wiped when dropped. One thread at
 * a time. Errors as gw_image_encode's; after one, the next update starts
 * over and gw_image_cache_bytes returns -EINVAL until an update succeeds.
 */
struct gw_image_cache;
struct gw_image_cache *gw_image_cache_new(void);
void gw_image_cache_free(struct gw_image_cache *c);
int gw_image_cache_update(struct gw_image_cache *c, const struct snapshot *snap,
			  char *const *gateways, char *const *addresses, size_t n_gateways,
			  uint64_t *digest);
int gw_image_cache_bytes(struct gw_image_cache *c, uint8_t **out, size_t *len);

/* Wipes and frees an encoded image; NULL is fine. */
void gw_image_buf_free(uint8_t *p, size_t len);

/*
 * Decodes len bytes at p into img (revision 0, compiled_ms 0). -EINVAL
 * when the bytes are not an image of this format version and byte order
 * (images of earlier versions included), are truncated, or do not
 * describe a consistent snapshot (an index or key out of range, a count
 * larger than the bytes left, a value unused or not its key's); -ENOMEM.
 * On failure img is left empty. Release with gw_image_fini.
 */
int gw_image_decode(const uint8_t *p, size_t len, struct gw_image *img);
/* Drops img's snapshot reference and frees the address map. */
void gw_image_fini(struct gw_image *img);

#endif
