// Server-sent events as an OpenAI-compatible server streams a completion: the bytes arrive in
// arbitrary pieces; each complete "data:" field is handed on (multi-line data joined by "\n",
// per the HTML standard's event-stream format). Comments, other fields and CR/CRLF line ends are
// handled; an event ends at a blank line.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace ep::loadgen {

class SseParser {
 public:
  // Called with each event's data (e.g. a JSON chunk, or "[DONE]"); returning false stops the
  // parse (feed returns false from then on).
  using OnData = std::function<bool(const std::string&)>;
  // A line longer than `max_line` bytes (a server that never ends its lines) is an error.
  explicit SseParser(OnData on_data, size_t max_line = 64u << 20);

  // Returns false after on_data asked to stop or on an over-long line (then error() says which).
  bool feed(std::string_view bytes);
  // The end of the stream: an event not yet ended by a blank line is dispatched (servers that
  // end with "data: [DONE]\n" and no blank line).
  bool finish();
  const std::string& error() const { return error_; }

 private:
  bool line(std::string_view l);
  bool dispatch();

  OnData on_data_;
  size_t max_line_;
  std::string pending_;  // bytes of an unfinished line
  std::string data_;     // the current event's data
  bool has_data_ = false;
  bool last_was_cr_ = false;
  bool stopped_ = false;
  std::string error_;
};

}  // namespace ep::loadgen
