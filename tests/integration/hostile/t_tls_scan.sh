#!/bin/sh
# SPDX-License-Identifier: MIT
# The TLS scan's quick form (openssl s_client only: protocol versions, every
# cipher suite one at a time, renegotiation) as an integration case; the
# full scan with testssl.sh is tests/tls-scan/run without --quick.
cd "$(dirname "$0")/../../.." && exec tests/tls-scan/run --quick
