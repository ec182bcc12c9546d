// The HTTP client every request of bench-serve goes through: the target's scheme, host and port,
// its CA certificate for https (--ca-cert), the timeouts.
#pragma once

#include "loadgen/stream_request.h"

#include <httplib.h>

#include <memory>

namespace ep::loadgen {

// A client for `target` (its base URL's scheme://host[:port]); `read_timeout_s` bounds each wait
// for a byte. ep::Error if --ca-cert is given to a build without TLS.
std::unique_ptr<httplib::Client> make_client(const Target& target, double read_timeout_s);

}  // namespace ep::loadgen
