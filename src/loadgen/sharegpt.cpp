#include "loadgen/sharegpt.h"

#include "core/error.h"
#include "core/mapped_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>

namespace ep::loadgen {
namespace {

// A SAX reader that keeps, per conversation, only the turns the benchmark uses. Nesting:
// list > conversation object > "conversations" list > turn object > "from"/"value".
class SharegptReader : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::vector<SharegptPair> pairs;
  std::string error;

  bool null() override { return scalar(); }
  bool boolean(bool) override { return scalar(); }
  bool number_integer(number_integer_t) override { return scalar(); }
  bool number_unsigned(number_unsigned_t) override { return scalar(); }
  bool number_float(number_float_t, const string_t&) override { return scalar(); }
  bool binary(binary_t&) override { return scalar(); }

  bool string(string_t& s) override {
    if (in_turn() && key_ == "from") from_ = std::move(s);
    if (in_turn() && key_ == "value") {
      value_ = std::move(s);
      has_value_ = true;
    }
    return scalar();
  }

  bool key(string_t& k) override {
    key_ = k;
    if (stack_.size() == 2) record_key_ = k;
    return true;
  }

  bool start_object(std::size_t) override {
    if (stack_.empty()) return refuse("the top level is an object, not a list of conversations");
    if (stack_.size() == 1) {
      turns_ = 0;
      record_key_.clear();
      prompt_.reset();
      answer_.reset();
    }
    if (in_turns()) {
      from_.clear();
      value_.clear();
      has_value_ = false;
    }
    stack_.push_back('o');
    return true;
  }

  bool end_object() override {
    const bool turn = in_turn();
    stack_.pop_back();
    if (turn) {
      ++turns_;
      // A turn whose value is not text is neither a prompt nor an answer.
      if (has_value_ && !prompt_ && from_ == "human") {
        prompt_ = std::move(value_);
      } else if (has_value_ && prompt_ && !answer_ && from_ == "gpt") {
        answer_ = std::move(value_);
      }
    } else if (stack_.size() == 1 && turns_ >= 2 && prompt_ && answer_) {
      pairs.push_back({std::move(*prompt_), std::move(*answer_)});
    }
    return true;
  }

  bool start_array(std::size_t) override {
    if (stack_.size() == 1) return refuse("the list holds a list, not conversation objects");
    stack_.push_back('a');
    return true;
  }
  bool end_array() override {
    stack_.pop_back();
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error = e.what();
    return false;
  }

 private:
  std::vector<char> stack_;
  std::string key_, record_key_;
  std::string from_, value_;
  bool has_value_ = false;
  std::optional<std::string> prompt_, answer_;
  size_t turns_ = 0;

  bool in_turns() const {
    return stack_.size() == 3 && stack_[2] == 'a' && record_key_ == "conversations";
  }
  bool in_turn() const {
    return stack_.size() == 4 && stack_[2] == 'a' && stack_[3] == 'o' &&
           record_key_ == "conversations";
  }
  bool scalar() {
    if (stack_.empty()) return refuse("the top level is not a list of conversations");
    if (stack_.size() == 1) return refuse("the list holds a value, not conversation objects");
    return true;
  }
  bool refuse(const char* why) {
    error = why;
    return false;
  }
};

}  // namespace

std::vector<SharegptPair> read_sharegpt(std::string_view json_text, const std::string& source) {
  SharegptReader reader;
  const bool ok = nlohmann::json::sax_parse(json_text.begin(), json_text.end(), &reader);
  if (!ok) fail("{}: not a ShareGPT-format JSON list: {}", source, reader.error);
  return std::move(reader.pairs);
}

std::vector<SharegptPair> read_sharegpt_file(const std::filesystem::path& path) {
  const MappedFile file(path);
  return read_sharegpt(std::string_view(reinterpret_cast<const char*>(file.data()), file.size()),
                       path.string());
}

bool sharegpt_keep(size_t prompt_len, size_t output_len, bool fixed_output) {
  if (prompt_len < 4 || (!fixed_output && output_len < 4)) return false;
  return prompt_len <= 1024 && prompt_len + output_len <= 2048;
}

std::vector<BenchPrompt> sharegpt_prompts(std::vector<SharegptPair> pairs, size_t n, uint64_t seed,
                                          const TokenCounter& count,
                                          std::optional<size_t> fixed_output_len) {
  std::mt19937_64 rng(seed);
  std::shuffle(pairs.begin(), pairs.end(), rng);
  std::vector<BenchPrompt> out;
  for (SharegptPair& p : pairs) {
    if (out.size() == n) break;
    const size_t prompt_len = count(p.prompt);
    const size_t output_len = fixed_output_len ? *fixed_output_len : count(p.answer);
    if (!sharegpt_keep(prompt_len, output_len, fixed_output_len.has_value())) continue;
    out.push_back({std::move(p.prompt), prompt_len, output_len});
  }
  return out;
}

}  // namespace ep::loadgen
