// edgeprompt relay --listen HOST:PORT --to HOST:PORT [--record FILE] [--bandwidth 50Mbit]
// [--latency 20ms]: forwards TCP connections and records every byte that crosses, so a deployment
// can audit what leaves a device; the link options emulate a slower network for experiments.
#include "cli/command.h"
#include "cli/listen_address.h"
#include "core/error.h"
#include "relay/link_shape.h"
#include "relay/tcp_relay.h"

#include <fmt/core.h>

#include <cstdio>
#include <memory>
#include <string>

namespace ep::cli {

Command add_relay(CLI::App& root) {
  struct Options {
    std::string listen = "127.0.0.1:0", to, record, bandwidth, latency;
  };
  auto o = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand("relay", "Forward TCP traffic and record every byte (audit)");
  app->add_option("--listen", o->listen, "HOST:PORT to listen on (port 0: any free port)");
  app->add_option("--to", o->to, "HOST:PORT to forward to")->required();
  app->add_option("--record", o->record, "Write everything that crossed, both ways, to this file");
  app->add_option("--bandwidth", o->bandwidth,
                  "Emulated link rate each way, e.g. 50Mbit, 1Gbit, 10MB (bytes/s); default: none");
  app->add_option("--latency", o->latency, "Emulated one-way delay, e.g. 20ms; default: none");
  return {app, [o] {
            const StopSignals signals;
            const auto [host, port] = parse_listen_address(o->listen);
            const auto [to_host, to_port] = parse_listen_address(o->to);
            LinkShape link;
            if (!o->bandwidth.empty()) link.bytes_per_second = parse_bandwidth(o->bandwidth);
            if (!o->latency.empty()) link.latency = parse_latency(o->latency);
            TcpRelay relay(to_port, {}, to_host, host, port, link);
            fmt::print(stderr, "relay: listening on {} -> {}:{}{}\n", relay.url(), to_host, to_port,
                       link.active()
                           ? fmt::format(" (link: {} Mbit/s, {} ms each way)",
                                         link.bytes_per_second > 0
                                             ? fmt::format("{:g}", link.bytes_per_second * 8e-6)
                                             : std::string("unlimited"),
                                         double(link.latency.count()) / 1000)
                           : "");
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
