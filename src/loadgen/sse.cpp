#include "loadgen/sse.h"

namespace ep::loadgen {

SseParser::SseParser(OnData on_data, size_t max_line)
    : on_data_(std::move(on_data)), max_line_(max_line) {}

bool SseParser::feed(std::string_view bytes) {
  if (stopped_) return false;
  for (const char c : bytes) {
    if (c == '\n' && last_was_cr_) {  // the LF of a CRLF already ended the line
      last_was_cr_ = false;
      continue;
    }
    last_was_cr_ = c == '\r';
    if (c == '\n' || c == '\r') {
      const std::string l = std::move(pending_);
      pending_.clear();
      if (!line(l)) return false;
      continue;
    }
    if (pending_.size() >= max_line_) {
      error_ = "an event-stream line longer than the limit";
      stopped_ = true;
      return false;
    }
    pending_ += c;
  }
  return true;
}

bool SseParser::finish() {
  if (stopped_) return false;
  if (!pending_.empty()) {
    const std::string l = std::move(pending_);
    pending_.clear();
    if (!line(l)) return false;
  }
  return dispatch();
}

bool SseParser::line(std::string_view l) {
  if (l.empty()) return dispatch();
  if (l.front() == ':') return true;  // a comment (keep-alive)
  const size_t colon = l.find(':');
  const std::string_view field = l.substr(0, colon);
  std::string_view value =
      colon == std::string_view::npos ? std::string_view() : l.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (has_data_) data_ += '\n';
    data_.append(value);
    has_data_ = true;
  }
  return true;  // event, id, retry: not used by completion streams
}

bool SseParser::dispatch() {
  if (!has_data_) return true;
  has_data_ = false;
  const std::string d = std::move(data_);
  data_.clear();
  if (!on_data_(d)) {
    stopped_ = true;
    return false;
  }
  return true;
}

}  // namespace ep::loadgen
