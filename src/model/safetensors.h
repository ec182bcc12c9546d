// Hugging Face safetensors checkpoints: single files, sharded directories with an index, read in
// place from memory-mapped files.
// Layout of one file: u64 little-endian N, N bytes of a JSON object
//   {"<tensor>": {"dtype": "F32", "shape": [out, in], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<value>", ...}}
// then the data buffer; data_offsets are relative to the start of that buffer (byte 8 + N).
#pragma once

#include "core/dtype.h"
#include "core/mapped_file.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ep {

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::F32;    // F32, F16 or BF16
  std::vector<int64_t> shape;  // as in the file: outermost first (row-major), e.g. [out, in]
  // Into the mapped file (or the bytes given to parse()). Not necessarily aligned to the element
  // size: the format does not promise it, so read through memcpy or check the alignment first.
  const uint8_t* data = nullptr;
  uint64_t n_bytes = 0;
  std::string file;  // the file (shard) path, for messages

  int64_t n_elements() const;
};

// A set of tensors from one or more safetensors files. Every header is validated on opening:
// sizes, offsets and shapes are checked against the file, unsupported dtypes and duplicate names
// are refused; problems throw ep::Error "<path>: <problem>".
class SafetensorsArchive {
 public:
  // `dir` holds model.safetensors, or model.safetensors.index.json and the shards it names, or
  // else any number of *.safetensors files (all of them are read, in name order).
  static std::unique_ptr<SafetensorsArchive> open_directory(const std::filesystem::path& dir);
  static std::unique_ptr<SafetensorsArchive> open_file(const std::filesystem::path& file);
  // Parses one in-memory file (the fuzzer and tests use this); `bytes` must outlive the archive.
  static std::unique_ptr<SafetensorsArchive> parse(std::span<const uint8_t> bytes,
                                                   std::string name);

  ~SafetensorsArchive();
  SafetensorsArchive(const SafetensorsArchive&) = delete;
  SafetensorsArchive& operator=(const SafetensorsArchive&) = delete;

  // In file order; for several files, the files in the order they were read.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view name) const;  // nullptr if absent

 private:
  SafetensorsArchive() = default;
  // Parses one file's header and appends its tensors; `name` is the path for messages.
  void add_file(std::span<const uint8_t> bytes, const std::string& name);
  void add_mapped(const std::filesystem::path& path);

  std::vector<std::unique_ptr<MappedFile>> files_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace ep
