#include "cli/edge_fleet.h"

#include "core/error.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/core.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace ep::cli {
namespace {

std::string read_text(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string last_lines(const std::string& text, size_t n) {
  size_t at = text.size();
  for (size_t i = 0; i <= n && at > 0; ++i) {
    const size_t nl = text.rfind('\n', at - 1);
    if (nl == std::string::npos) return text;
    at = nl;
    if (i == n) return text.substr(at + 1);
  }
  return text;
}

int spawn(const std::vector<std::string>& args, const std::filesystem::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) fail("cannot start {}: {}", args[0], std::strerror(rc));
  return pid;
}

}  // namespace

EdgeFleet::EdgeFleet(size_t n, const std::vector<std::string>& edge_args, double timeout_s) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "edgeprompt-edges-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) fail("cannot create a directory for the edges' logs");
  dir_ = tmpl;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  try {
    for (size_t i = 0; i < n; ++i) {
      // Loopback edges of a load test: plain HTTP (the cloud URL bench-serve got is http://).
      std::vector<std::string> args = {self, "edge", "--insecure-http"};
      args.insert(args.end(), edge_args.begin(), edge_args.end());
      args.insert(args.end(), {"--listen", "127.0.0.1:0"});
      pids_.push_back(spawn(args, dir_ / fmt::format("edge-{}.log", i)));
    }
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(timeout_s));
    for (size_t i = 0; i < n; ++i) {
      const auto log = dir_ / fmt::format("edge-{}.log", i);
      while (true) {
        const std::string text = read_text(log);
        const size_t at = text.find("listening on http://");
        if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
          const size_t url = at + std::string("listening on ").size();
          urls_.push_back(text.substr(url, text.find_first_of(" \n", url) - url));
          break;
        }
        int status = 0;
        if (waitpid(pids_[i], &status, WNOHANG) == pids_[i]) {
          pids_[i] = -1;
          fail("edge {} exited before listening: {}", i, last_lines(text, 3));
        }
        if (std::chrono::steady_clock::now() > deadline) {
          fail("edge {} did not listen within {} s: {}", i, timeout_s, last_lines(text, 3));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  } catch (...) {
    stop_all();
    throw;
  }
}

EdgeFleet::~EdgeFleet() {
  stop_all();
}

void EdgeFleet::stop_all() {
  for (int pid : pids_) {
    if (pid > 0) kill(pid, SIGTERM);
  }
  for (int& pid : pids_) {
    if (pid <= 0) continue;
    // Up to 5 s to shut down cleanly, then killed.
    int status = 0;
    bool gone = false;
    for (int t = 0; t < 250 && !gone; ++t) {
      gone = waitpid(pid, &status, WNOHANG) == pid;
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!gone) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    pid = -1;
  }
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

}  // namespace ep::cli
