#include "tokenizer/sentencepiece_model.h"

#include "core/error.h"
#include "core/mapped_file.h"

#include <cstring>

namespace ep {
namespace {

// Field numbers from sentencepiece_model.proto.
namespace field {
constexpr uint32_t kPieces = 1, kTrainerSpec = 2, kNormalizerSpec = 3;
constexpr uint32_t kPieceText = 1, kPieceScore = 2, kPieceType = 3;
constexpr uint32_t kModelType = 3, kByteFallback = 35, kUnkId = 40, kBosId = 41, kEosId = 42,
                   kPadId = 43;
constexpr uint32_t kNormName = 1, kAddDummyPrefix = 3, kRemoveExtraWhitespaces = 4,
                   kEscapeWhitespaces = 5;
}  // namespace field

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// One protobuf message: iterate fields with next(); every read is bounds-checked.
class ProtoReader {
 public:
  ProtoReader(std::span<const uint8_t> bytes, std::string_view name) : b_(bytes), name_(name) {}

  // Reads the next field's tag; false at the end of the message.
  bool next(uint32_t& field_number, uint32_t& wire_type) {
    if (pos_ >= b_.size()) return false;
    const uint64_t tag = varint();
    field_number = uint32_t(tag >> 3);
    wire_type = uint32_t(tag & 7);
    if (field_number == 0) bad("field number 0");
    return true;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= b_.size()) bad("truncated varint");
      const uint8_t byte = b_[pos_++];
      v |= uint64_t(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return v;
    }
    bad("varint longer than 10 bytes");
  }
  std::span<const uint8_t> bytes() {
    const uint64_t n = varint();
    if (n > b_.size() - pos_) bad("length-delimited field runs past the end");
    const auto out = b_.subspan(pos_, size_t(n));
    pos_ += size_t(n);
    return out;
  }
  std::string string() {
    const auto s = bytes();
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
  }
  float fixed32_float() {
    if (b_.size() - pos_ < 4) bad("truncated fixed32");
    float f;
    std::memcpy(&f, b_.data() + pos_, 4);  // little-endian on every platform we build for
    pos_ += 4;
    return f;
  }
  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case kVarint:
        varint();
        return;
      case kFixed64:
        advance(8);
        return;
      case kLengthDelimited:
        bytes();
        return;
      case kFixed32:
        advance(4);
        return;
      default:
        bad("unsupported wire type " + std::to_string(wire_type));
    }
  }
  void expect(uint32_t wire_type, uint32_t expected) {
    if (wire_type != expected) bad("unexpected wire type " + std::to_string(wire_type));
  }
  [[noreturn]] void bad(const std::string& what) const {
    fail("{}: not a valid SentencePiece model ({} at byte {})", name_, what, pos_);
  }

 private:
  void advance(size_t n) {
    if (b_.size() - pos_ < n) bad("truncated field");
    pos_ += n;
  }
  std::span<const uint8_t> b_;
  std::string_view name_;
  size_t pos_ = 0;
};

int32_t as_int32(uint64_t v) {
  return int32_t(uint32_t(v));
}  // negative int32 are 10-byte varints

SentencePieceModel::Piece parse_piece(ProtoReader r) {
  SentencePieceModel::Piece p;
  uint32_t f = 0, w = 0;
  while (r.next(f, w)) {
    if (f == field::kPieceText) {
      r.expect(w, kLengthDelimited);
      p.text = r.string();
    } else if (f == field::kPieceScore) {
      r.expect(w, kFixed32);
      p.score = r.fixed32_float();
    } else if (f == field::kPieceType) {
      r.expect(w, kVarint);
      const uint64_t t = r.varint();
      if (t < 1 || t > 6) r.bad("piece type " + std::to_string(t));
      p.type = TokenType(t);
    } else {
      r.skip(w);
    }
  }
  return p;
}

void parse_trainer_spec(ProtoReader r, SentencePieceModel& m) {
  uint32_t f = 0, w = 0;
  while (r.next(f, w)) {
    int32_t* target = nullptr;
    if (f == field::kModelType) target = &m.model_type;
    if (f == field::kUnkId) target = &m.unk_id;
    if (f == field::kBosId) target = &m.bos_id;
    if (f == field::kEosId) target = &m.eos_id;
    if (f == field::kPadId) target = &m.pad_id;
    if (target) {
      r.expect(w, kVarint);
      *target = as_int32(r.varint());
    } else if (f == field::kByteFallback) {
      r.expect(w, kVarint);
      m.byte_fallback = r.varint() != 0;
    } else {
      r.skip(w);
    }
  }
}

void parse_normalizer_spec(ProtoReader r, SentencePieceModel& m) {
  uint32_t f = 0, w = 0;
  while (r.next(f, w)) {
    bool* flag = nullptr;
    if (f == field::kAddDummyPrefix) flag = &m.add_dummy_prefix;
    if (f == field::kRemoveExtraWhitespaces) flag = &m.remove_extra_whitespaces;
    if (f == field::kEscapeWhitespaces) flag = &m.escape_whitespaces;
    if (flag) {
      r.expect(w, kVarint);
      *flag = r.varint() != 0;
    } else if (f == field::kNormName) {
      r.expect(w, kLengthDelimited);
      m.normalizer_name = r.string();
    } else {
      r.skip(w);
    }
  }
}

}  // namespace

SentencePieceModel SentencePieceModel::parse(std::span<const uint8_t> bytes,
                                             std::string_view name) {
  SentencePieceModel m;
  ProtoReader r(bytes, name);
  uint32_t f = 0, w = 0;
  while (r.next(f, w)) {
    if (f == field::kPieces || f == field::kTrainerSpec || f == field::kNormalizerSpec) {
      r.expect(w, kLengthDelimited);
      const ProtoReader sub(r.bytes(), name);
      if (f == field::kPieces) m.pieces.push_back(parse_piece(sub));
      if (f == field::kTrainerSpec) parse_trainer_spec(sub, m);
      if (f == field::kNormalizerSpec) parse_normalizer_spec(sub, m);
    } else {
      r.skip(w);
    }
  }
  if (m.pieces.empty()) fail("{}: not a valid SentencePiece model (no pieces)", name);
  return m;
}

SentencePieceModel SentencePieceModel::load(const std::filesystem::path& path) {
  const MappedFile file(path);
  return parse(file.bytes(), path.string());
}

}  // namespace ep
