/* SPDX-License-Identifier: MIT */
/*
 * infra.h: Gateway infrastructure propagation, the pure half. For every
 * Gateway waygate programs, a Service in the Gateway's namespace stands for
 * the edge box in the cluster: headless, without a selector, one port per
 * listener port, labelled with the Gateway's name and with every
 * spec.infrastructure label and annotation, owned by the Gateway (so the
 * cluster collects it with the Gateway). This header builds that desired
 * Service from the Gateway object; kube/infra.c compares it with what the
 * cluster holds and writes it. No sockets, no clock: unit-tested.
 */
#ifndef WG_GWAPI_INFRA_H
#define WG_GWAPI_INFRA_H

#include <stdbool.h>
#include <stddef.h>

#include "gwapi/objset.h"

/* Labels every generated Service carries. Only Services labelled
 * managed-by waygate are ever changed or deleted. */
#define GW_INFRA_LABEL_GATEWAY "gateway.networking.k8s.io/gateway-name"
#define GW_INFRA_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define GW_INFRA_MANAGED_BY "waygate"
/* The controllerName of the box that wrote the Service: several boxes may
 * share a cluster, and each deletes only its own Services. An annotation,
 * as a controller name ("example.net/x") is not a valid label value. */
#define GW_INFRA_ANN_CONTROLLER "waygate.dev/controller-name"

/* Longest Service name (a DNS-1035 label) and label value. */
#define GW_INFRA_NAME_MAX 63

/*
 * The Service's name for a Gateway: "<gateway>-waygate" when that is a
 * valid DNS-1035 label of at most 63 characters. Otherwise the Gateway's
 * name is made one ('.' and other characters become '-', "gw-" in front of
 * a leading digit), cut so that "-<8 hex of a hash of the full name>-waygate"
 * fits, which keeps distinct Gateways on distinct names. out gets at most
 * GW_INFRA_NAME_MAX characters and a NUL.
 */
void gw_infra_service_name(const char *gateway, char out[GW_INFRA_NAME_MAX + 1]);

/* The gateway-name label's value: the name itself when it is at most 63
 * characters, else its first 54, '-' and 8 hex of its hash. */
void gw_infra_label_value(const char *gateway, char out[GW_INFRA_NAME_MAX + 1]);

/* True when gw is a Gateway whose GatewayClass (in set) names controller,
 * and gw is not being deleted: a Gateway waygate programs. */
bool gw_infra_gateway_is_ours(const struct gw_objset *set, const struct gw_object *gw,
			      const char *controller);

/* The desired Service for a Gateway. */
struct gw_infra_service {
	char name[GW_INFRA_NAME_MAX + 1];
	const char *ns; /* borrowed from the Gateway object */
	char *json;     /* the whole Service as JSON text; caller frees */
	size_t len;
};

/*
 * Builds the Service for gw (a Gateway object; its listeners and
 * spec.infrastructure are read, nothing is judged): apiVersion v1, kind
 * Service; metadata name/namespace, labels (gateway-name, managed-by, then
 * every spec.infrastructure.labels entry that does not override those
 * two), annotations (every spec.infrastructure.annotations entry and the
 * controller annotation, which wins), ownerReferences (the Gateway, as
 * controller, when it has a uid); spec type ClusterIP, clusterIP None, and
 * one port per distinct (port, protocol) of the listeners (HTTP, HTTPS,
 * TLS, TCP: TCP; UDP: UDP; other protocols have no port), named
 * "tcp-<port>"/"udp-<port>", targetPort = port, sorted by port then
 * protocol. Returns 0, -EINVAL when gw is not a Gateway with a name and
 * namespace, or -ENOMEM.
 */
int gw_infra_service_build(const struct gw_object *gw, const char *controller,
			   struct gw_infra_service *out);

#endif
