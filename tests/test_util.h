// Shared helpers for the tests: fixture paths, scratch directories, running the CLI.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ep::test {

std::filesystem::path source_dir();          // the repository root
std::filesystem::path fixtures_dir();        // tests/fixtures
std::filesystem::path shared_fixtures_dir(); // ../shared/fixtures beside the repository
std::filesystem::path edgeprompt_binary();   // the built CLI

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

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, const std::string& bytes);

}  // namespace ep::test
