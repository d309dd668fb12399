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
// save_safetensors writes atomically: to a fresh temporary in path's directory (a random
// name created with O_EXCL, so a file or symlink already there is never written through, and
// two saves to one path never share it), mode 0600 until complete, then the permission bits of
// the file it replaces (or 0666 less the umask for a new file), fsynced, renamed over `path`,
// and the directory fsynced. A reader or a crash sees the old file or the new one, never a mix;
// of two concurrent saves the last rename wins whole. On failure the temporary is removed,
// `path` is untouched and std::system_error (errno, "[save] ...") is thrown. A path holding a
// NUL character throws std::invalid_argument (load_safetensors too). If `path` is a symlink,
// the link itself is replaced by the new regular file and the file it pointed to is left as
// it was (rename's semantics; torch.save writes through the link instead).
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
