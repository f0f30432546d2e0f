/* service_helper.h - a whiply service on a temporary folder, for the unit tests that go through
 * the daemon's library (test_ingest, test_outbox). */
#ifndef WH_TEST_SERVICE_HELPER_H
#define WH_TEST_SERVICE_HELPER_H

#include "serve/config.h"
#include "serve/service.h"

/* Writes rules_yaml to DIR/rules.yaml and opens a service on DIR/data with 2 threads, no
 * signing key, no checkpoints, no preallocation, and the config lines in `extra` ("" none).
 * NULL (with the reason on stderr) when it cannot. cfg is the caller's, kept by the service. */
wh_service *th_service_open(wh_config *cfg, const char *dir, const char *rules_yaml,
                            const char *extra);

#endif
