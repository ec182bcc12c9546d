// bench-serve --edges N: N edge processes (this binary's `edge` subcommand) on loopback ports,
// each pointed at the cloud, started before the run and stopped (SIGTERM, then SIGKILL) after it.
// Each writes its log to a file of a scratch directory, removed with the fleet.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ep::cli {

class EdgeFleet {
 public:
  // `edge_args` follow "edge" (model, cloud, engine options); "--listen 127.0.0.1:0" is added.
  // Waits until every edge listens; ep::Error with the failing edge's last log lines if one
  // exits or does not listen within `timeout_s`.
  EdgeFleet(size_t n, const std::vector<std::string>& edge_args, double timeout_s = 120);
  ~EdgeFleet();
  EdgeFleet(const EdgeFleet&) = delete;
  EdgeFleet& operator=(const EdgeFleet&) = delete;

  const std::vector<std::string>& urls() const { return urls_; }

 private:
  void stop_all();
  std::filesystem::path dir_;
  std::vector<int> pids_;
  std::vector<std::string> urls_;
};

}  // namespace ep::cli
