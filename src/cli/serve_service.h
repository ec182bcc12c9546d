// How `edgeprompt cloud` and `edgeprompt edge` run their service: bind, say where it listens,
// serve until SIGINT or SIGTERM, then stop cleanly.
#pragma once

#include "cli/listen_address.h"
#include "http/service.h"

#include <string_view>

namespace ep::cli {

// Prints "<name>: listening on http://HOST:PORT (<details>)" on stderr once bound (scripts and
// tests wait for that line). Throws ep::Error when the address cannot be bound.
int serve_until_stopped(http::Service& service, const StopSignals& signals, std::string_view name,
                        std::string_view details);

}  // namespace ep::cli
