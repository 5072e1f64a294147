// SPDX-License-Identifier: MIT
/*
 * map.c: a small string-keyed hash map (chained, doubling) for kube/'s
 * indexes: the Secret/ConfigMap index and the status write queue, both
 * keyed "kind/namespace/name". It owns its keys, never its values. Not
 * thread-safe; runs on the control thread.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "kube/internal.h"

static size_t slot(const struct kmap *m, const char *key)
{
	return (size_t)(hash_bytes(key, strlen(key)) & (m->nb - 1));
}

void *kmap_get(const struct kmap *m, const char *key)
{
	if (!m->nb)
		return NULL;
	for (struct kmap_ent *e = m->b[slot(m, key)]; e; e = e->next)
		if (!strcmp(e->key, key))
			return e->val;
	return NULL;
}

static int grow(struct kmap *m)
{
	size_t nb = m->nb ? m->nb * 2 : 16;
	struct kmap_ent **b = calloc(nb, sizeof(*b));
	struct kmap old = *m;

	if (!b)
		return -ENOMEM;
	m->b = b;
	m->nb = nb;
	for (size_t i = 0; i < old.nb; i++) {
		struct kmap_ent *e = old.b[i], *next;

		for (; e; e = next) {
			size_t s = slot(m, e->key);

			next = e->next;
			e->next = b[s];
			b[s] = e;
		}
	}
	free(old.b);
	return 0;
}

int kmap_put(struct kmap *m, const char *key, void *val, void **old)
{
	struct kmap_ent *e;
	size_t s;

	if (old)
		*old = NULL;
	if (m->nb) {
		for (e = m->b[slot(m, key)]; e; e = e->next) {
			if (!strcmp(e->key, key)) {
				if (old)
					*old = e->val;
				e->val = val;
				return 0;
			}
		}
	}
	if ((m->n + 1) * 4 > m->nb * 3 && grow(m))
		return -ENOMEM;
	e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->key = strdup(key);
	if (!e->key) {
		free(e);
		return -ENOMEM;
	}
	e->val = val;
	s = slot(m, key);
	e->next = m->b[s];
	m->b[s] = e;
	m->n++;
	return 0;
}

void *kmap_del(struct kmap *m, const char *key)
{
	struct kmap_ent **pp, *e;
	void *v;

	if (!m->nb)
		return NULL;
	for (pp = &m->b[slot(m, key)]; (e = *pp); pp = &e->next) {
		if (!strcmp(e->key, key)) {
			*pp = e->next;
			v = e->val;
			free(e->key);
			free(e);
			m->n--;
			return v;
		}
	}
	return NULL;
}

void kmap_each(struct kmap *m, bool (*fn)(void *arg, const char *key, void *val), void *arg)
{
	for (size_t i = 0; i < m->nb; i++) {
		struct kmap_ent **pp = &m->b[i], *e;

		while ((e = *pp)) {
			if (fn(arg, e->key, e->val)) {
				*pp = e->next;
				free(e->key);
				free(e);
				m->n--;
			} else {
				pp = &e->next;
			}
		}
	}
}

void kmap_fini(struct kmap *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		struct kmap_ent *e = m->b[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e->key);
			free(e);
		}
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}
