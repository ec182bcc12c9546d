// libFuzzer target: arbitrary bytes as a completion's event stream, the way bench-serve reads a
// server's answer: split into two pieces at a point the first byte chooses, events parsed as
// JSON chunks into a request record. Every outcome must be a record (maybe with an error),
// never a crash, a hang or an out-of-bounds read.
#include "loadgen/sse.h"
#include "loadgen/stream_request.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool chat = (data[0] & 1) != 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t split = bytes.empty() ? 0 : size_t(data[0]) % (bytes.size() + 1);
  ep::loadgen::RequestRecord record;
  double last = 0, now = 0;
  ep::loadgen::SseParser parser(
      [&](const std::string& event) {
        now += 0.001;
        return ep::loadgen::apply_stream_event(event, chat, now, record, last);
      },
      1 << 16);
  if (parser.feed(bytes.substr(0, split)) && parser.feed(bytes.substr(split))) parser.finish();
  return 0;
}
