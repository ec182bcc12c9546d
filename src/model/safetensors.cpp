#include "model/safetensors.h"

#include "core/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>

namespace ep {

namespace {

namespace fs = std::filesystem;
using OrderedJson = nlohmann::ordered_json;

// The reference implementation refuses headers above 100 MB; so do we (a real header is a few KB
// per thousand tensors).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Objects and arrays nest at most: header {} > tensor {} > shape [] (metadata: header > {}).
constexpr int kMaxDepth = 3;
constexpr size_t kMaxShownChars = 200;

// A name or value from a file, made safe for a one-line message: control characters escaped,
// very long strings cut.
std::string printable(std::string_view s) {
  std::string out;
  const size_t n = std::min(s.size(), kMaxShownChars);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > n) out += "...";
  return out;
}

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

std::string json_type(const OrderedJson& v) {
  return v.type_name();
}

struct DTypeInfo {
  DType dtype;
  uint64_t size;
};

std::optional<DTypeInfo> safetensors_dtype(std::string_view s) {
  if (s == "F32") return DTypeInfo{DType::F32, 4};
  if (s == "F16") return DTypeInfo{DType::F16, 2};
  if (s == "BF16") return DTypeInfo{DType::BF16, 2};
  return std::nullopt;
}

// A JSON value that is a non-negative integer fitting in int64.
std::optional<uint64_t> non_negative_int(const OrderedJson& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u <= uint64_t(std::numeric_limits<int64_t>::max())) return u;
    return std::nullopt;
  }
  if (v.is_number_integer()) {
    const auto i = v.get<int64_t>();
    if (i >= 0) return uint64_t(i);
  }
  return std::nullopt;
}

std::string read_text(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("{}: cannot open", path.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) fail("{}: cannot read", path.string());
  return ss.str();
}

// A shard name from an index must be a plain relative path inside the model directory.
bool is_safe_relative_path(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x20) return false;
  }
  const fs::path p(s);
  if (p.is_absolute() || p.has_root_path()) return false;
  for (const auto& part : p) {
    if (part == "..") return false;
  }
  return true;
}

bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

}  // namespace

int64_t SafetensorsTensor::n_elements() const {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;  // validated on parsing: cannot overflow
  return n;
}

SafetensorsArchive::~SafetensorsArchive() = default;

const SafetensorsTensor* SafetensorsArchive::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void SafetensorsArchive::add_file(std::span<const uint8_t> bytes, const std::string& name) {
  if (bytes.size() < 8) {
    fail("{}: too small for a safetensors file ({} bytes; the header length alone takes 8)", name,
         bytes.size());
  }
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= uint64_t(bytes[size_t(i)]) << (8 * i);
  if (header_len > bytes.size() - 8) {
    fail(
        "{}: header length {} runs past the end of the file ({} bytes): truncated or not a "
        "safetensors file",
        name, header_len, bytes.size());
  }
  if (header_len > kMaxHeaderBytes) {
    fail("{}: header length {} is larger than the {} bytes allowed", name, header_len,
         kMaxHeaderBytes);
  }
  const uint8_t* header_begin = bytes.data() + 8;
  const uint8_t* header_end = header_begin + header_len;
  const std::span<const uint8_t> buffer = bytes.subspan(size_t(8 + header_len));
  // The JSON reader takes a NUL byte for the end of its input; valid JSON never holds one.
  if (std::find(header_begin, header_end, uint8_t(0)) != header_end) {
    fail("{}: header is not valid JSON: it contains a NUL byte", name);
  }

  // Parse the header, refusing deep nesting and duplicate tensor names as they are read.
  std::set<std::string, std::less<>> seen;
  const OrderedJson::parser_callback_t check = [&](int depth, OrderedJson::parse_event_t event,
                                                   OrderedJson& parsed) {
    if ((event == OrderedJson::parse_event_t::object_start ||
         event == OrderedJson::parse_event_t::array_start) &&
        depth >= kMaxDepth) {
      fail("{}: header nests JSON deeper than a safetensors header does", name);
    }
    if (event == OrderedJson::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second) {
        fail("{}: tensor '{}' appears twice in the header", name, printable(key));
      }
    }
    return true;
  };
  OrderedJson header;
  try {
    header = OrderedJson::parse(header_begin, header_end, check);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: header is not valid JSON: {}", name, one_line(e.what()));
  }
  if (!header.is_object()) {
    fail("{}: header is a JSON {}, not an object", name, json_type(header));
  }

  std::vector<SafetensorsTensor> parsed;
  parsed.reserve(header.size());
  for (const auto& [key, entry] : header.items()) {
    if (key == "__metadata__") {
      if (!entry.is_object() && !entry.is_null()) {
        fail("{}: __metadata__ is a JSON {}, not an object", name, json_type(entry));
      }
      continue;
    }
    const std::string shown = printable(key);
    if (!entry.is_object()) {
      fail("{}: tensor '{}': entry is a JSON {}, not an object", name, shown, json_type(entry));
    }
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end()) fail("{}: tensor '{}': no 'dtype'", name, shown);
    if (shape_it == entry.end()) fail("{}: tensor '{}': no 'shape'", name, shown);
    if (offsets_it == entry.end()) fail("{}: tensor '{}': no 'data_offsets'", name, shown);

    if (!dtype_it->is_string()) {
      fail("{}: tensor '{}': 'dtype' is a JSON {}, not a string", name, shown,
           json_type(*dtype_it));
    }
    const auto& dtype_name = dtype_it->get_ref<const std::string&>();
    const auto info = safetensors_dtype(dtype_name);
    if (!info) {
      fail("{}: tensor '{}' has dtype {}, which is not supported (supported: F32, F16, BF16)", name,
           shown, printable(dtype_name));
    }

    if (!shape_it->is_array()) {
      fail("{}: tensor '{}': 'shape' is a JSON {}, not an array", name, shown,
           json_type(*shape_it));
    }
    std::vector<int64_t> shape;
    shape.reserve(shape_it->size());
    uint64_t n_elements = 1;
    bool overflow = false;
    for (const auto& dim : *shape_it) {
      const auto d = non_negative_int(dim);
      if (!d) {
        fail("{}: tensor '{}': shape {} has an entry that is not a non-negative integer", name,
             shown, printable(shape_it->dump()));
      }
      shape.push_back(int64_t(*d));
      // Every partial product must fit in int64 (so n_elements() is safe), even when a later
      // dimension is 0.
      overflow = overflow || __builtin_mul_overflow(n_elements, *d, &n_elements) ||
                 n_elements > uint64_t(std::numeric_limits<int64_t>::max());
    }
    uint64_t expected_bytes = 0;
    overflow = overflow || __builtin_mul_overflow(n_elements, info->size, &expected_bytes);
    if (overflow) {
      fail("{}: tensor '{}': shape {} has too many elements", name, shown,
           printable(shape_it->dump()));
    }

    if (!offsets_it->is_array() || offsets_it->size() != 2) {
      fail("{}: tensor '{}': 'data_offsets' must be an array [begin, end]", name, shown);
    }
    const auto begin = non_negative_int((*offsets_it)[0]);
    const auto end = non_negative_int((*offsets_it)[1]);
    if (!begin || !end) {
      fail("{}: tensor '{}': 'data_offsets' {} are not non-negative integers", name, shown,
           printable(offsets_it->dump()));
    }
    if (*begin > *end || *end > buffer.size()) {
      fail("{}: tensor '{}': data_offsets [{}, {}] lie outside the data buffer ({} bytes)", name,
           shown, *begin, *end, buffer.size());
    }
    if (*end - *begin != expected_bytes) {
      fail("{}: tensor '{}': shape {} of {} needs {} bytes but data_offsets [{}, {}] hold {}", name,
           shown, printable(shape_it->dump()), dtype_name, expected_bytes, *begin, *end,
           *end - *begin);
    }

    SafetensorsTensor t;
    t.name = key;
    t.dtype = info->dtype;
    t.shape = std::move(shape);
    t.data = buffer.data() + *begin;
    t.n_bytes = expected_bytes;
    t.file = name;
    parsed.push_back(std::move(t));
  }

  // Only now touch the archive, so a failed file leaves it as it was.
  for (const auto& t : parsed) {
    if (const auto it = index_.find(t.name); it != index_.end()) {
      fail("{}: tensor '{}' is also in {}", name, printable(t.name), tensors_[it->second].file);
    }
  }
  for (auto& t : parsed) {
    index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }
}

void SafetensorsArchive::add_mapped(const std::filesystem::path& path) {
  auto file = std::make_unique<MappedFile>(path);
  const std::span<const uint8_t> bytes = file->bytes();
  files_.push_back(std::move(file));
  add_file(bytes, path.string());
}

std::unique_ptr<SafetensorsArchive> SafetensorsArchive::parse(std::span<const uint8_t> bytes,
                                                              std::string name) {
  std::unique_ptr<SafetensorsArchive> archive(new SafetensorsArchive());
  archive->add_file(bytes, name);
  return archive;
}

std::unique_ptr<SafetensorsArchive> SafetensorsArchive::open_file(
    const std::filesystem::path& file) {
  std::unique_ptr<SafetensorsArchive> archive(new SafetensorsArchive());
  archive->add_mapped(file);
  return archive;
}

std::unique_ptr<SafetensorsArchive> SafetensorsArchive::open_directory(
    const std::filesystem::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) fail("{}: no such directory", dir.string());
  if (!fs::is_directory(dir, ec)) fail("{}: not a directory", dir.string());

  std::unique_ptr<SafetensorsArchive> archive(new SafetensorsArchive());
  const fs::path index_path = dir / "model.safetensors.index.json";
  const fs::path single_path = dir / "model.safetensors";

  if (path_exists(index_path)) {
    const std::string where = index_path.string();
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(read_text(index_path));
    } catch (const nlohmann::json::exception& e) {
      fail("{}: not valid JSON: {}", where, one_line(e.what()));
    }
    if (!index.is_object()) fail("{}: not a JSON object", where);
    const auto map_it = index.find("weight_map");
    if (map_it == index.end() || !map_it->is_object()) {
      fail("{}: no 'weight_map' object", where);
    }
    if (map_it->empty()) fail("{}: 'weight_map' is empty", where);

    // Shard name -> the tensors the index places there.
    std::map<std::string, std::vector<std::string>> shards;
    for (const auto& [tensor, shard] : map_it->items()) {
      if (!shard.is_string()) {
        fail("{}: weight_map entry for tensor '{}' is a JSON {}, not a file name", where,
             printable(tensor), shard.type_name());
      }
      const auto& shard_name = shard.get_ref<const std::string&>();
      if (!is_safe_relative_path(shard_name)) {
        fail("{}: shard '{}' (for tensor '{}') is not a file inside the model directory", where,
             printable(shard_name), printable(tensor));
      }
      shards[shard_name].push_back(tensor);
    }
    for (const auto& [shard_name, tensors] : shards) {
      const fs::path shard_path = dir / shard_name;
      if (!path_exists(shard_path)) {
        fail("{}: shard '{}' (for tensor '{}') does not exist", where, printable(shard_name),
             printable(tensors.front()));
      }
      archive->add_mapped(shard_path);
    }
    for (const auto& [shard_name, tensors] : shards) {
      const std::string shard_file = (dir / shard_name).string();
      for (const auto& tensor : tensors) {
        const SafetensorsTensor* t = archive->find(tensor);
        if (t == nullptr || t->file != shard_file) {
          fail("{}: tensor '{}' is listed in shard '{}' but is not there", where, printable(tensor),
               printable(shard_name));
        }
      }
    }
    return archive;
  }

  if (path_exists(single_path)) {
    archive->add_mapped(single_path);
    return archive;
  }

  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".safetensors" && it->is_regular_file(ec)) {
      files.push_back(it->path());
    }
  }
  if (ec) fail("{}: cannot list: {}", dir.string(), ec.message());
  if (files.empty()) {
    fail(
        "{}: no safetensors weights (model.safetensors, model.safetensors.index.json or "
        "*.safetensors)",
        dir.string());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) archive->add_mapped(f);
  return archive;
}

}  // namespace ep
