// Shared helpers for the tests: fixture paths, scratch directories, running the CLI.
#pragma once

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ep::test {

std::filesystem::path source_dir();         // the repository root
std::filesystem::path fixtures_dir();       // tests/fixtures
std::filesystem::path edgeprompt_binary();  // the built CLI
// The trained default model shipped in models/: "f16" or "q8_0".
std::filesystem::path default_model(const std::string& type = "q8_0");
// The first python3 on PATH (the reference scripts need it).
std::filesystem::path python3();

// A fresh empty directory under the system temp dir, removed when the object dies.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the edgeprompt binary with the given arguments (no shell), capturing stdout and stderr.
CommandResult run_cli(const std::vector<std::string>& args, const std::string& stdin_text = "");
// The same for another copy of the binary (e.g. one placed in a scratch directory).
CommandResult run_program(const std::filesystem::path& binary, const std::vector<std::string>& args,
                          const std::string& stdin_text = "");

// A long-running edgeprompt process (a server): started with its stderr captured (read
// continuously, so a service that logs every request never blocks on a full pipe), stopped with
// SIGTERM (then SIGKILL) when the object dies.
class Process {
 public:
  explicit Process(const std::vector<std::string>& args);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  // Waits until a line of stderr contains `needle` (or the process exits / timeout passes);
  // returns that line, or "" on failure.
  std::string wait_for_line(const std::string& needle, int timeout_ms = 20000);
  // Sends SIGTERM and waits; returns the exit code (128+signal if killed).
  int stop();
  // SIGKILL: the process ends wherever it is, with no chance to clean up (a crash, a power cut).
  void kill_now();
  std::string err() const;  // stderr so far

 private:
  int pid_ = -1;
  int err_fd_ = -1;
  mutable std::mutex mutex_;
  std::condition_variable more_;
  std::string err_;
  bool err_closed_ = false;
  std::thread reader_;
};

// Waits for a server's "listening on http://..." line and returns that base URL, e.g.
// http://127.0.0.1:4242; throws with the server's stderr if it did not start.
std::string listen_url(Process& p);
// The same for `edgeprompt cloud` started on a free loopback port.
std::string start_cloud(Process& p);

// Assembles in `hf_dir` a small chat model: the llama-gqa fixture's weights with the tiny
// SentencePiece test tokenizer (vocabulary 403 within the model's 1000 rows) and a ChatML
// template. Returns hf_dir.
std::filesystem::path make_chat_model_dir(const std::filesystem::path& hf_dir);

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, const std::string& bytes);

}  // namespace ep::test
