/* SPDX-License-Identifier: MIT */
/*
 * features.c: the Gateway API features this build claims, written to
 * GatewayClass status.supportedFeatures (sorted, as the spec asks). A
 * feature is listed only when its conformance cases pass
 * (tests/conformance/passing.txt keeps them from regressing).
 */
#include <stddef.h>

#include "cli/internal.h"

const char *const wg_supported_features[] = {
	"Gateway",
	"GatewayPort8080",
	"HTTPRoute",
	"HTTPRouteMethodMatching",
	"HTTPRouteQueryParamMatching",
	"HTTPRouteResponseHeaderModification",
	"ReferenceGrant",
	NULL,
};
