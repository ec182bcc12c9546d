#include "model/gguf.h"

#include "core/atomic_file.h"
#include "core/error.h"

#include <fmt/format.h>

#include <bit>
#include <cstdio>
#include <cstring>
#include <limits>

namespace ep {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr uint64_t kMaxDims = 4;
constexpr uint64_t kMaxArrayDepth = 8;

// Bounds-checked little-endian reader over the mapped bytes.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }

  template <typename T>
  T read(const char* what) {
    if (remaining() < sizeof(T)) {
      fail("{}: truncated: file ends at byte {} while reading {}", name_, bytes_.size(), what);
    }
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  uint64_t read_count(bool v1, const char* what) {
    return v1 ? read<uint32_t>(what) : read<uint64_t>(what);
  }

  std::string read_string(bool v1, const char* what) {
    const uint64_t n = read_count(v1, what);
    if (n > remaining()) {
      fail("{}: truncated or corrupt: {} of {} bytes at offset {} runs past the end of the file",
           name_, what, n, pos_);
    }
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& name_;
  size_t pos_ = 0;
};

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::BOOL:
      return 1;
    case GgufType::UINT16:
    case GgufType::INT16:
      return 2;
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::FLOAT32:
      return 4;
    case GgufType::UINT64:
    case GgufType::INT64:
    case GgufType::FLOAT64:
      return 8;
    case GgufType::STRING:
    case GgufType::ARRAY:
      return 0;
  }
  return 0;
}

bool valid_type(uint32_t t) {
  return t <= uint32_t(GgufType::FLOAT64);
}

GgufValue read_value(Cursor& c, GgufType type, bool v1, const std::string& name,
                     const std::string& key, uint64_t depth) {
  switch (type) {
    case GgufType::UINT8:
      return GgufValue::u8(c.read<uint8_t>("a u8 value"));
    case GgufType::INT8:
      return GgufValue::i8(c.read<int8_t>("an i8 value"));
    case GgufType::UINT16:
      return GgufValue::u16(c.read<uint16_t>("a u16 value"));
    case GgufType::INT16:
      return GgufValue::i16(c.read<int16_t>("an i16 value"));
    case GgufType::UINT32:
      return GgufValue::u32(c.read<uint32_t>("a u32 value"));
    case GgufType::INT32:
      return GgufValue::i32(c.read<int32_t>("an i32 value"));
    case GgufType::UINT64:
      return GgufValue::u64(c.read<uint64_t>("a u64 value"));
    case GgufType::INT64:
      return GgufValue::i64(c.read<int64_t>("an i64 value"));
    case GgufType::FLOAT32:
      return GgufValue::f32(c.read<float>("an f32 value"));
    case GgufType::FLOAT64:
      return GgufValue::f64(c.read<double>("an f64 value"));
    case GgufType::BOOL: {
      const uint8_t b = c.read<uint8_t>("a bool value");
      if (b > 1) fail("{}: metadata '{}': bool value {} is neither 0 nor 1", name, key, b);
      return GgufValue::boolean(b != 0);
    }
    case GgufType::STRING:
      return GgufValue::string(c.read_string(v1, "a string value"));
    case GgufType::ARRAY: {
      if (depth >= kMaxArrayDepth) fail("{}: metadata '{}': arrays nested too deeply", name, key);
      const uint32_t et = c.read<uint32_t>("an array type");
      if (!valid_type(et)) fail("{}: metadata '{}': unknown array element type {}", name, key, et);
      const uint64_t n = c.read_count(v1, "an array length");
      // Every element takes at least one byte (a string at least its length field): a count
      // larger than the rest of the file is corrupt, and we refuse before allocating.
      const size_t min_elem = et == uint32_t(GgufType::STRING)  ? (v1 ? 4 : 8)
                              : et == uint32_t(GgufType::ARRAY) ? 12
                                                                : scalar_size(GgufType(et));
      if (n > c.remaining() / min_elem) {
        fail("{}: metadata '{}': array of {} elements is larger than the file", name, key, n);
      }
      std::vector<GgufValue> elems;
      elems.reserve(size_t(n));
      for (uint64_t i = 0; i < n; ++i) {
        elems.push_back(read_value(c, GgufType(et), v1, name, key, depth + 1));
      }
      return GgufValue::array(GgufType(et), std::move(elems));
    }
  }
  fail("{}: metadata '{}': unknown value type {}", name, key, uint32_t(type));
}

// Writes scalars, strings and arrays in GGUF v3 encoding.
void encode_value(std::string& out, const GgufValue& v) {
  const auto put = [&](auto x) { out.append(reinterpret_cast<const char*>(&x), sizeof x); };
  switch (v.type()) {
    case GgufType::UINT8:
      put(uint8_t(v.as_u64()));
      break;
    case GgufType::INT8:
      put(int8_t(v.as_i64()));
      break;
    case GgufType::UINT16:
      put(uint16_t(v.as_u64()));
      break;
    case GgufType::INT16:
      put(int16_t(v.as_i64()));
      break;
    case GgufType::UINT32:
      put(uint32_t(v.as_u64()));
      break;
    case GgufType::INT32:
      put(int32_t(v.as_i64()));
      break;
    case GgufType::UINT64:
      put(uint64_t(v.as_u64()));
      break;
    case GgufType::INT64:
      put(int64_t(v.as_i64()));
      break;
    case GgufType::FLOAT32:
      put(float(v.as_f64()));
      break;
    case GgufType::FLOAT64:
      put(double(v.as_f64()));
      break;
    case GgufType::BOOL:
      put(uint8_t(v.as_bool() ? 1 : 0));
      break;
    case GgufType::STRING:
      put(uint64_t(v.as_string().size()));
      out += v.as_string();
      break;
    case GgufType::ARRAY:
      put(uint32_t(v.array_type()));
      put(uint64_t(v.as_array().size()));
      for (const auto& e : v.as_array()) encode_value(out, e);
      break;
  }
}

uint64_t align_up(uint64_t x, uint64_t a) {
  return (x + a - 1) / a * a;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// GgufValue

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::string_view kNames[] = {"u8",  "i8",  "u16",  "i16",    "u32",
                                                "i32", "f32", "bool", "string", "array",
                                                "u64", "i64", "f64"};
  const auto i = uint32_t(t);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

GgufValue GgufValue::integer(GgufType t, int64_t v) {
  GgufValue r;
  r.type_ = t;
  r.int_ = v;
  return r;
}
GgufValue GgufValue::f32(float v) {
  GgufValue r;
  r.type_ = GgufType::FLOAT32;
  r.float_ = v;
  return r;
}
GgufValue GgufValue::f64(double v) {
  GgufValue r;
  r.type_ = GgufType::FLOAT64;
  r.float_ = v;
  return r;
}
GgufValue GgufValue::boolean(bool v) {
  GgufValue r;
  r.type_ = GgufType::BOOL;
  r.int_ = v ? 1 : 0;
  return r;
}
GgufValue GgufValue::string(std::string v) {
  GgufValue r;
  r.type_ = GgufType::STRING;
  r.string_ = std::move(v);
  return r;
}
GgufValue GgufValue::array(GgufType element_type, std::vector<GgufValue> elements) {
  GgufValue r;
  r.type_ = GgufType::ARRAY;
  r.array_type_ = element_type;
  r.array_ = std::move(elements);
  return r;
}
GgufValue GgufValue::string_array(const std::vector<std::string>& v) {
  std::vector<GgufValue> e;
  e.reserve(v.size());
  for (const auto& s : v) e.push_back(string(s));
  return array(GgufType::STRING, std::move(e));
}
GgufValue GgufValue::f32_array(const std::vector<float>& v) {
  std::vector<GgufValue> e;
  e.reserve(v.size());
  for (float x : v) e.push_back(f32(x));
  return array(GgufType::FLOAT32, std::move(e));
}
GgufValue GgufValue::i32_array(const std::vector<int32_t>& v) {
  std::vector<GgufValue> e;
  e.reserve(v.size());
  for (int32_t x : v) e.push_back(i32(x));
  return array(GgufType::INT32, std::move(e));
}

bool GgufValue::is_integer() const {
  switch (type_) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::UINT16:
    case GgufType::INT16:
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::UINT64:
    case GgufType::INT64:
      return true;
    default:
      return false;
  }
}

uint64_t GgufValue::as_u64() const {
  if (!is_integer()) fail("expected an unsigned integer, found {}", gguf_type_name(type_));
  if (type_ != GgufType::UINT64 && int_ < 0)
    fail("expected a non-negative integer, found {}", int_);
  return uint64_t(int_);
}
int64_t GgufValue::as_i64() const {
  if (!is_integer()) fail("expected an integer, found {}", gguf_type_name(type_));
  if (type_ == GgufType::UINT64 && int_ < 0) fail("integer {} does not fit in i64", uint64_t(int_));
  return int_;
}
double GgufValue::as_f64() const {
  if (is_float()) return float_;
  if (type_ == GgufType::UINT64) return double(uint64_t(int_));
  if (is_integer()) return double(int_);
  fail("expected a number, found {}", gguf_type_name(type_));
}
bool GgufValue::as_bool() const {
  if (type_ != GgufType::BOOL) fail("expected a bool, found {}", gguf_type_name(type_));
  return int_ != 0;
}
const std::string& GgufValue::as_string() const {
  if (type_ != GgufType::STRING) fail("expected a string, found {}", gguf_type_name(type_));
  return string_;
}
GgufType GgufValue::array_type() const {
  if (type_ != GgufType::ARRAY) fail("expected an array, found {}", gguf_type_name(type_));
  return array_type_;
}
const std::vector<GgufValue>& GgufValue::as_array() const {
  if (type_ != GgufType::ARRAY) fail("expected an array, found {}", gguf_type_name(type_));
  return array_;
}

std::string GgufValue::to_display_string(size_t max_elements) const {
  switch (type_) {
    case GgufType::STRING: {
      std::string s = string_.size() > 60 ? string_.substr(0, 57) + "..." : string_;
      for (char& ch : s) {
        if (ch == '\n') ch = ' ';
      }
      return "\"" + s + "\"";
    }
    case GgufType::ARRAY: {
      std::string s = fmt::format("[{} x {}]", array_.size(), gguf_type_name(array_type_));
      if (array_type_ != GgufType::ARRAY && !array_.empty()) {
        s += " {";
        for (size_t i = 0; i < array_.size() && i < max_elements; ++i) {
          s += (i ? ", " : "") + array_[i].to_display_string(0);
        }
        s += array_.size() > max_elements ? ", ...}" : "}";
      }
      return s;
    }
    case GgufType::BOOL:
      return int_ ? "true" : "false";
    case GgufType::FLOAT32:
    case GgufType::FLOAT64:
      return fmt::format("{}", float_);
    case GgufType::UINT64:
      return fmt::format("{}", uint64_t(int_));
    default:
      return fmt::format("{}", int_);
  }
}

int64_t GgufTensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// GgufFile

std::unique_ptr<GgufFile> GgufFile::open(const std::filesystem::path& path) {
  auto f = std::unique_ptr<GgufFile>(new GgufFile());
  f->name_ = path.string();
  f->file_ = std::make_unique<MappedFile>(path);
  f->bytes_ = f->file_->bytes();
  f->parse_all();
  return f;
}

std::unique_ptr<GgufFile> GgufFile::parse(std::span<const uint8_t> bytes, std::string name) {
  auto f = std::unique_ptr<GgufFile>(new GgufFile());
  f->name_ = std::move(name);
  f->bytes_ = bytes;
  f->parse_all();
  return f;
}

void GgufFile::parse_all() {
  Cursor c(bytes_, name_);
  if (bytes_.size() < 4) fail("{}: not a GGUF file (only {} bytes)", name_, bytes_.size());
  const uint32_t magic = c.read<uint32_t>("the magic");
  if (magic != kMagic) fail("{}: not a GGUF file (bad magic)", name_);
  version_ = c.read<uint32_t>("the version");
  if (version_ == 0 || (version_ & 0xffff) == 0) {
    fail("{}: GGUF version {:#x} looks big-endian; only little-endian files are supported", name_,
         version_);
  }
  if (version_ > 3) fail("{}: unsupported GGUF version {} (supported: 1, 2, 3)", name_, version_);
  const bool v1 = version_ == 1;
  const uint64_t n_tensors = c.read_count(v1, "the tensor count");
  const uint64_t n_kv = c.read_count(v1, "the metadata count");
  // Each key/value pair takes at least 12 bytes, each tensor info at least 24.
  if (n_kv > c.remaining() / 12) fail("{}: corrupt: {} metadata entries cannot fit", name_, n_kv);
  if (n_tensors > c.remaining() / 24) fail("{}: corrupt: {} tensors cannot fit", name_, n_tensors);

  metadata_.reserve(size_t(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string(v1, "a metadata key");
    const uint32_t t = c.read<uint32_t>("a metadata type");
    if (!valid_type(t)) fail("{}: metadata '{}' has unknown type {}", name_, key, t);
    GgufValue v = read_value(c, GgufType(t), v1, name_, key, 0);
    if (metadata_index_.count(key)) fail("{}: duplicate metadata key '{}'", name_, key);
    metadata_index_.emplace(key, metadata_.size());
    metadata_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is_integer()) fail("{}: general.alignment must be an integer", name_);
    alignment_ = a->as_u64();
    if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0 || alignment_ > (1u << 20)) {
      fail("{}: general.alignment {} is not a power of two", name_, alignment_);
    }
  }

  tensors_.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.read_string(v1, "a tensor name");
    const uint32_t n_dims = c.read<uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) {
      fail("{}: tensor '{}' has {} dimensions (1 to 4 allowed)", name_, t.name, n_dims);
    }
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = c.read_count(v1, "a tensor dimension");
      if (dim == 0 || dim > (uint64_t(1) << 40) ||
          n_elements > std::numeric_limits<int64_t>::max() / dim) {
        fail("{}: tensor '{}' has an invalid dimension {}", name_, t.name, dim);
      }
      n_elements *= dim;
      t.shape.push_back(int64_t(dim));
    }
    const uint32_t type_id = c.read<uint32_t>("a tensor type");
    const auto type = dtype_from_ggml_id(type_id);
    if (!type) {
      fail(
          "{}: tensor '{}' has type {} (ggml id {}), which is not supported (supported: F32, F16, "
          "BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)",
          name_, t.name, ggml_type_name(type_id), type_id);
    }
    t.type = *type;
    if (t.shape[0] % dtype_block_elems(t.type) != 0) {
      fail("{}: tensor '{}': row length {} is not a multiple of the {} block size {}", name_,
           t.name, t.shape[0], ggml_type_name(type_id), dtype_block_elems(t.type));
    }
    t.n_bytes = uint64_t(n_elements) / uint64_t(dtype_block_elems(t.type)) *
                uint64_t(dtype_block_bytes(t.type));
    t.offset = c.read<uint64_t>("a tensor offset");
    if (t.offset % alignment_ != 0) {
      fail("{}: tensor '{}' offset {} is not aligned to {}", name_, t.name, t.offset, alignment_);
    }
    if (tensor_index_.count(t.name)) fail("{}: duplicate tensor '{}'", name_, t.name);
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  const uint64_t data_start = align_up(c.pos(), alignment_);
  const uint64_t data_size = bytes_.size() > data_start ? bytes_.size() - data_start : 0;
  for (auto& t : tensors_) {
    if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
      fail("{}: truncated: tensor '{}' needs bytes {}..{} of the data section, which has {}", name_,
           t.name, t.offset, t.offset + t.n_bytes, data_size);
    }
    t.data = bytes_.data() + data_start + t.offset;
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

const GgufValue& GgufFile::get(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr) fail("{}: metadata key '{}' is missing", name_, key);
  return *v;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

// ---------------------------------------------------------------------------------------------
// GgufWriter

void GgufWriter::set(std::string key, GgufValue value) {
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::add_tensor(std::string name, DType type, std::vector<int64_t> shape, Fill fill) {
  if (shape.empty() || shape.size() > kMaxDims) fail("tensor '{}': 1 to 4 dimensions", name);
  if (shape[0] % dtype_block_elems(type) != 0) {
    fail("tensor '{}': row length {} is not a multiple of {} for {}", name, shape[0],
         dtype_block_elems(type), dtype_name(type));
  }
  tensors_.push_back({std::move(name), type, std::move(shape), std::move(fill)});
}

void GgufWriter::write(const std::filesystem::path& path,
                       const std::function<void(uint64_t, uint64_t)>& progress) const {
  uint64_t alignment = 32;
  for (const auto& [k, v] : metadata_) {
    if (k == "general.alignment") alignment = v.as_u64();
  }

  std::string header;
  const auto put = [&](auto x) { header.append(reinterpret_cast<const char*>(&x), sizeof x); };
  put(kMagic);
  put(uint32_t(3));
  put(uint64_t(tensors_.size()));
  put(uint64_t(metadata_.size()));
  for (const auto& [k, v] : metadata_) {
    put(uint64_t(k.size()));
    header += k;
    put(uint32_t(v.type()));
    encode_value(header, v);
  }
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put(uint64_t(t.name.size()));
    header += t.name;
    put(uint32_t(t.shape.size()));
    int64_t n = 1;
    for (int64_t d : t.shape) {
      put(uint64_t(d));
      n *= d;
    }
    put(uint32_t(t.type));
    put(offset);
    sizes.push_back(uint64_t(dtype_row_bytes(t.type, n)));
    offset = align_up(offset + sizes.back(), alignment);
  }
  header.resize(align_up(header.size(), alignment), '\0');
  const uint64_t total = header.size() + offset;

  write_atomically(path, [&](const WriteBytes& write) {
    write(header.data(), header.size());
    uint64_t done = header.size();
    std::vector<uint8_t> buffer;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      buffer.assign(align_up(sizes[i], alignment), 0);
      tensors_[i].fill(std::span<uint8_t>(buffer.data(), sizes[i]));
      write(buffer.data(), buffer.size());
      done += buffer.size();
      if (progress) progress(done, total);
    }
  });
}

}  // namespace ep
