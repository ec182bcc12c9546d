// edgeprompt: one binary, one subcommand per job.
#include "cli/command.h"
#include "core/error.h"
#include "http/connection_loop.h"

#include <fmt/core.h>

#include <csignal>
#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  // A peer that hangs up mid-write (a TLS server refusing our certificate, a client gone during a
  // stream) must surface as a failed write on that connection, not kill the whole process: OpenSSL
  // writes with plain write(2), which raises SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  // A file-size limit reached must fail that write (EFBIG), like a full disk, not end the process.
  std::signal(SIGXFSZ, SIG_IGN);
  ep::http::raise_open_files_limit();
  CLI::App root{"EdgePrompt: cloud-edge collaborative LLM inference", "edgeprompt"};
  root.require_subcommand(1);
  root.set_version_flag("--version", "edgeprompt 0.1.0");
  const std::vector<ep::cli::Command> commands = {
      ep::cli::add_logits(root),        ep::cli::add_info(root),
      ep::cli::add_convert(root),       ep::cli::add_synth(root),
      ep::cli::add_run(root),           ep::cli::add_tokenize(root),
      ep::cli::add_detokenize(root),    ep::cli::add_cloud(root),
      ep::cli::add_edge(root),          ep::cli::add_relay(root),
      ep::cli::add_bench(root),         ep::cli::add_perplexity(root),
      ep::cli::add_chat_template(root), ep::cli::add_bench_serve(root),
  };
  try {
    root.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return root.exit(e);
  }
  try {
    for (const auto& c : commands) {
      if (c.app->parsed()) return c.run();
    }
  } catch (const ep::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 1;
}
