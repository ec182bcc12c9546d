// edgeprompt relay --listen HOST:PORT --to HOST:PORT --record FILE: forwards TCP connections
// and records every byte that crosses, so a deployment can audit what leaves a device.
#include "cli/command.h"
#include "cli/listen_address.h"
#include "core/error.h"
#include "net/tcp_relay.h"

#include <fmt/core.h>

#include <cstdio>
#include <memory>

namespace ep::cli {

Command add_relay(CLI::App& root) {
  struct Options {
    std::string listen = "127.0.0.1:0", to, record;
  };
  auto o = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand("relay", "Forward TCP traffic and record every byte (audit)");
  app->add_option("--listen", o->listen, "HOST:PORT to listen on (port 0: any free port)");
  app->add_option("--to", o->to, "HOST:PORT to forward to")->required();
  app->add_option("--record", o->record, "Write everything that crossed, both ways, to this file");
  return {app, [o] {
            const StopSignals signals;
            const auto [host, port] = parse_listen_address(o->listen);
            const auto [to_host, to_port] = parse_listen_address(o->to);
            TcpRelay relay(to_port, {}, to_host, host, port);
            fmt::print(stderr, "relay: listening on {} -> {}:{}\n", relay.url(), to_host, to_port);
            signals.wait();
            if (!o->record.empty()) {
              const std::string bytes = relay.client_to_server() + relay.server_to_client();
              std::FILE* f = std::fopen(o->record.c_str(), "wb");
              if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
                fail("{}: cannot write the capture", o->record);
              }
              std::fclose(f);
              fmt::print(stderr, "relay: recorded {} bytes to {}\n", bytes.size(), o->record);
            }
            return 0;
          }};
}

}  // namespace ep::cli
