// Each subcommand lives in its own file and registers itself on the root CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace ep::cli {

struct Command {
  CLI::App* app = nullptr;   // the parsed subcommand
  std::function<int()> run;  // runs it; returns the exit code
};

Command add_logits(CLI::App& root);
Command add_info(CLI::App& root);
Command add_convert(CLI::App& root);
Command add_synth(CLI::App& root);
Command add_run(CLI::App& root);
Command add_cloud(CLI::App& root);
Command add_edge(CLI::App& root);
Command add_relay(CLI::App& root);
Command add_tokenize(CLI::App& root);
Command add_detokenize(CLI::App& root);
Command add_bench(CLI::App& root);
Command add_perplexity(CLI::App& root);
Command add_chat_template(CLI::App& root);
Command add_bench_serve(CLI::App& root);

}  // namespace ep::cli
