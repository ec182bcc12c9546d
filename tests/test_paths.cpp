#include "test_util.h"

#include "http/connection_loop.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace ep::test {
namespace {
// The test binary is a client of the services it starts, like the edge is of the cloud: a server
// that closes a refused TLS connection while we still write must fail that request (as it does
// in main()), not end the test run with SIGPIPE.
[[maybe_unused]] const bool broken_pipes_are_errors = [] {
  std::signal(SIGPIPE, SIG_IGN);
  // Tests hold a thousand client sockets open against a service.
  http::raise_open_files_limit();
  return true;
}();
}  // namespace

std::filesystem::path source_dir() {
  return EP_SOURCE_DIR;
}
std::filesystem::path fixtures_dir() {
  return source_dir() / "tests" / "fixtures";
}
std::filesystem::path default_model(const std::string& type) {
  return source_dir() / "models" / ("edgeprompt-tiny-" + type + ".gguf");
}
std::filesystem::path python3() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const auto p = std::filesystem::path(dir) / "python3";
    if (std::filesystem::exists(p)) return p;
  }
  return "/usr/bin/python3";
}
std::filesystem::path edgeprompt_binary() {
  return EP_BINARY;
}

ScratchDir::ScratchDir() {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto p = std::filesystem::temp_directory_path() /
             ("ep-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    if (std::filesystem::create_directory(p)) {
      path_ = p;
      return;
    }
  }
  throw std::runtime_error("cannot create a scratch directory");
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

CommandResult run_cli(const std::vector<std::string>& args, const std::string& stdin_text) {
  return run_program(edgeprompt_binary(), args, stdin_text);
}

CommandResult run_program(const std::filesystem::path& binary, const std::vector<std::string>& args,
                          const std::string& stdin_text) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe(in_pipe) || pipe(out_pipe) || pipe(err_pipe)) throw std::runtime_error("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) {
    posix_spawn_file_actions_addclose(&fa, fd);
  }
  const std::string bin = binary.string();
  std::vector<char*> argv{const_cast<char*>(bin.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) throw std::runtime_error("cannot start " + bin);

  size_t written = 0;
  int in_fd = in_pipe[1];
  if (stdin_text.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  CommandResult result;
  bool out_open = true, err_open = true;
  char buf[65536];
  while (out_open || err_open) {
    pollfd fds[3] = {{out_open ? out_pipe[0] : -1, POLLIN, 0},
                     {err_open ? err_pipe[0] : -1, POLLIN, 0},
                     {in_fd, POLLOUT, 0}};
    poll(fds, 3, -1);
    if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n = write(in_fd, stdin_text.data() + written, stdin_text.size() - written);
      if (n > 0) written += size_t(n);
      if (n <= 0 || written == stdin_text.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        const ssize_t n = read(fds[i].fd, buf, sizeof buf);
        if (n <= 0) {
          (i == 0 ? out_open : err_open) = false;
        } else {
          (i == 0 ? result.out : result.err).append(buf, size_t(n));
        }
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

Process::Process(const std::vector<std::string>& args) {
  int err_pipe[2];
  // Close-on-exec: another service started later must not hold this one's stderr open.
  if (pipe2(err_pipe, O_CLOEXEC)) throw std::runtime_error("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  posix_spawn_file_actions_addclose(&fa, err_pipe[0]);
  posix_spawn_file_actions_addclose(&fa, err_pipe[1]);
  const std::string bin = edgeprompt_binary().string();
  std::vector<char*> argv{const_cast<char*>(bin.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int rc = posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(err_pipe[1]);
  err_fd_ = err_pipe[0];
  if (rc != 0) {
    close(err_fd_);
    throw std::runtime_error("cannot start " + bin);
  }
  reader_ = std::thread([this] {
    char buf[4096];
    ssize_t n;
    while ((n = read(err_fd_, buf, sizeof buf)) > 0) {
      std::lock_guard lock(mutex_);
      err_.append(buf, size_t(n));
      more_.notify_all();
    }
    std::lock_guard lock(mutex_);
    err_closed_ = true;
    more_.notify_all();
  });
}

Process::~Process() {
  stop();
}

std::string Process::wait_for_line(const std::string& needle, int timeout_ms) {
  std::unique_lock lock(mutex_);
  size_t at = std::string::npos;
  more_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    at = err_.find(needle);
    return at != std::string::npos || err_closed_;
  });
  if (at == std::string::npos) return "";
  const size_t b = err_.rfind('\n', at);
  const size_t e = err_.find('\n', at);
  return err_.substr(b == std::string::npos ? 0 : b + 1, e == std::string::npos ? e : e - b - 1);
}

std::string Process::err() const {
  std::lock_guard lock(mutex_);
  return err_;
}

int Process::stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) break;
    if (i == 99) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    usleep(50000);
  }
  pid_ = -1;
  reader_.join();  // the process is gone: its stderr ends
  close(err_fd_);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void Process::kill_now() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  reader_.join();
  close(err_fd_);
}

std::string listen_url(Process& p) {
  const std::string line = p.wait_for_line("listening on http://");
  const size_t at = line.find("http://");
  if (at == std::string::npos) throw std::runtime_error("did not start: " + p.err());
  return line.substr(at, line.find(' ', at) - at);
}

std::string start_cloud(Process& p) {
  return listen_url(p);
}

std::filesystem::path make_chat_model_dir(const std::filesystem::path& hf_dir) {
  namespace fs = std::filesystem;
  fs::create_directories(hf_dir);
  for (const char* f : {"config.json", "model.safetensors"}) {
    fs::copy_file(fixtures_dir() / "models" / "llama-gqa" / f, hf_dir / f);
  }
  const fs::path tok = fixtures_dir() / "tokenizer" / "spm_tiny";
  fs::copy_file(tok / "tokenizer.model", hf_dir / "tokenizer.model");
  auto config = nlohmann::json::parse(read_file(tok / "tokenizer_config.json"));
  config["added_tokens_decoder"]["402"] = {{"content", "<|im_start|>"}, {"special", true}};
  config["chat_template"] =
      "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
      "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  write_file(hf_dir / "tokenizer_config.json", config.dump());
  return hf_dir;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace ep::test
