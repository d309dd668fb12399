// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors): an
// 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and byte
// range, then the raw little-endian data. No pickle, no code: a file can only hold tensors.
//
// load_safetensors trusts nothing before checking it: the header length against the file
// size, UTF-8 and strict JSON (no duplicate names), the dtype allow-list (F32, F64, I64,
// BOOL), overflow-checked sizes matching each byte range, and byte ranges that are
// contiguous, non-overlapping and cover the data exactly. Any violation throws
// std::invalid_argument naming the file and the problem; a file that can't be opened throws
// std::system_error carrying errno (FileNotFoundError, PermissionError... in Python).
//
// save_safetensors writes to `path + ".tmp"` and renames it into place, so a crash never
// leaves a half-written checkpoint at `path`.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "bprop/tensor.h"

namespace bprop {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  NamedTensors tensors;  // in file order
  std::map<std::string, std::string> metadata;
};
SafetensorsFile load_safetensors(const std::string& path);
// The same checks and parsing on bytes already in memory (`what` names them in errors).
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& what);

}  // namespace bprop
