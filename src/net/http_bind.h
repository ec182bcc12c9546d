// Binding an HTTP server to its address, shared by the cloud and edge services.
#pragma once

#include <string>

namespace httplib {
class Server;
}

namespace ep {

// Binds to host:port (port 0: any free port); returns the bound port or throws ep::Error.
int bind_http_server(httplib::Server& server, const std::string& host, int port);

}  // namespace ep
