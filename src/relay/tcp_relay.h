// A recording TCP relay: sits between a client and a server, forwards every byte both ways and
// keeps a copy, so one can audit exactly what crossed (`edgeprompt relay`, the privacy test).
// Tests can also corrupt or cut the server's replies, and a LinkShape turns loopback into a slow
// network (bandwidth and latency each way) for experiments on the overlap of transfer and compute.
#pragma once

#include "relay/link_shape.h"

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ep {

class TcpRelay {
 public:
  // Called on each chunk from server to client: `connection` counts accepted connections from
  // 0, `offset` is the chunk's position in that connection's reply stream. Modify `chunk` to
  // corrupt it; return false to close the connection before sending it.
  using Tamper = std::function<bool(int connection, size_t offset, std::string& chunk)>;

  // Listens on listen_host:listen_port (0: any free port) and forwards to
  // upstream_host:upstream_port.
  TcpRelay(int upstream_port, Tamper tamper = {}, std::string upstream_host = "127.0.0.1",
           std::string listen_host = "127.0.0.1", int listen_port = 0, LinkShape shape = {});
  ~TcpRelay();
  int port() const { return port_; }
  std::string url() const { return "http://" + listen_host_ + ":" + std::to_string(port_); }
  std::string client_to_server() const;  // everything the clients sent
  std::string server_to_client() const;  // everything the server sent (before tampering)

 private:
  void accept_loop();
  void pump(int client, int server, int connection);

  int upstream_port_;
  std::string upstream_host_, listen_host_;
  Tamper tamper_;
  LinkShape shape_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mutex_;
  std::string up_, down_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace ep
