// GGUF files (versions 1-3): typed metadata, tensor table, memory-mapped tensor data; and a writer.
// Layout: magic "GGUF", u32 version, tensor count, metadata count (u64; u32 in v1), metadata
// key/value pairs, tensor infos (name, n_dims, dims with ne[0] innermost, ggml type, offset), then
// tensor data at a multiple of general.alignment (default 32).
#pragma once

#include "core/dtype.h"
#include "core/mapped_file.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ep {

enum class GgufType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
std::string_view gguf_type_name(GgufType t);

// One metadata value. Arrays hold elements of one type (arrays of arrays allowed).
class GgufValue {
 public:
  GgufValue() = default;
  static GgufValue u8(uint8_t v) { return integer(GgufType::UINT8, v); }
  static GgufValue i8(int8_t v) { return integer(GgufType::INT8, v); }
  static GgufValue u16(uint16_t v) { return integer(GgufType::UINT16, v); }
  static GgufValue i16(int16_t v) { return integer(GgufType::INT16, v); }
  static GgufValue u32(uint32_t v) { return integer(GgufType::UINT32, v); }
  static GgufValue i32(int32_t v) { return integer(GgufType::INT32, v); }
  static GgufValue u64(uint64_t v) { return integer(GgufType::UINT64, int64_t(v)); }
  static GgufValue i64(int64_t v) { return integer(GgufType::INT64, v); }
  static GgufValue f32(float v);
  static GgufValue f64(double v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue array(GgufType element_type, std::vector<GgufValue> elements);
  static GgufValue string_array(const std::vector<std::string>& v);
  static GgufValue f32_array(const std::vector<float>& v);
  static GgufValue i32_array(const std::vector<int32_t>& v);

  GgufType type() const { return type_; }
  bool is_integer() const;
  bool is_float() const { return type_ == GgufType::FLOAT32 || type_ == GgufType::FLOAT64; }
  // Accessors throw ep::Error when the value has another type (or does not fit).
  uint64_t as_u64() const;
  int64_t as_i64() const;
  double as_f64() const;  // integers and floats
  bool as_bool() const;
  const std::string& as_string() const;
  GgufType array_type() const;
  const std::vector<GgufValue>& as_array() const;

  std::string to_display_string(size_t max_elements = 8) const;

 private:
  static GgufValue integer(GgufType t, int64_t v);
  GgufType type_ = GgufType::UINT8;
  int64_t int_ = 0;  // integers (u64 stored bit-cast) and bool
  double float_ = 0.0;
  std::string string_;
  GgufType array_type_ = GgufType::UINT8;
  std::vector<GgufValue> array_;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // ggml order: shape[0] is the innermost (contiguous) dimension
  DType type = DType::F32;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // points into the mapped file

  int64_t n_elements() const;
};

// A parsed, memory-mapped GGUF file. Every offset and length is checked against the file size;
// problems throw ep::Error naming the file and what is wrong.
class GgufFile {
 public:
  static std::unique_ptr<GgufFile> open(const std::filesystem::path& path);
  // Parses an in-memory buffer (the fuzzer and tests use this); `bytes` must outlive the object.
  static std::unique_ptr<GgufFile> parse(std::span<const uint8_t> bytes, std::string name);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::string& name() const { return name_; }  // the path, for messages
  uint64_t file_size() const { return bytes_.size(); }
  std::span<const uint8_t> bytes() const { return bytes_; }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;
  // Typed getters: throw ep::Error "<file>: metadata key '<key>' missing" or "... has type X".
  const GgufValue& get(std::string_view key) const;
  std::string get_string(std::string_view key) const { return get(key).as_string(); }
  uint64_t get_u64(std::string_view key) const { return get(key).as_u64(); }
  double get_f64(std::string_view key) const { return get(key).as_f64(); }

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;

 private:
  GgufFile() = default;
  void parse_all();

  std::string name_;
  std::unique_ptr<MappedFile> file_;
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::map<std::string, size_t, std::less<>> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Writes GGUF v3. Tensor data is produced on demand, one tensor at a time, so files larger than
// memory can be written. The file appears atomically (written to "<path>.tmp", then renamed).
class GgufWriter {
 public:
  using Fill = std::function<void(std::span<uint8_t> out)>;

  void set(std::string key, GgufValue value);  // replaces an existing key, keeps insertion order
  void add_tensor(std::string name, DType type, std::vector<int64_t> shape, Fill fill);
  // Writes the file; `progress(done_bytes, total_bytes)` is called after each tensor.
  void write(const std::filesystem::path& path,
             const std::function<void(uint64_t, uint64_t)>& progress = {}) const;

 private:
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> shape;
    Fill fill;
  };
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Tensor> tensors_;
};

}  // namespace ep
