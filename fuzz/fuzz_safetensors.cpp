// libFuzzer target: the safetensors reader (parse_safetensors, the in-memory entry point behind
// load_safetensors). Any input must either parse into tensors that fit the file, or throw
// std::invalid_argument (io.h documents that every malformed file throws it). Anything else --
// another exception type, a crash, a sanitizer report, a broken invariant -- is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "bprop/io.h"
#include "bprop/ops.h"

namespace {

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fuzz_safetensors: invariant violated: %s\n", what);
  std::abort();
}

// Reads every element of t, so a view that points outside its buffer trips ASan.
uint64_t checksum(const bprop::Tensor& t) {
  const bprop::Tensor c = t.contiguous();
  const auto* p = static_cast<const unsigned char*>(c.data());
  const size_t n = static_cast<size_t>(c.numel()) * bprop::itemsize(c.dtype());
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  bprop::SafetensorsFile file;
  try {
    file = bprop::parse_safetensors(bytes, "fuzz input");
  } catch (const std::invalid_argument&) {
    return 0;  // the documented way to reject a file
  }
  // Accepted: the tensors must account for exactly the bytes after the header.
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | data[i];
  uint64_t total = 0;
  for (const auto& [name, tensor] : file.tensors) {
    if (!tensor.defined()) finding("undefined tensor");
    int64_t numel = 1;
    bool empty = false;
    for (int64_t d : tensor.shape()) {
      if (d < 0) finding("negative dimension");
      empty = empty || d == 0;
    }
    for (int64_t d : tensor.shape())
      if (!empty && __builtin_mul_overflow(numel, d, &numel)) finding("numel overflows");
    if (empty) numel = 0;
    if (numel != tensor.numel()) finding("numel disagrees with the shape");
    total += static_cast<uint64_t>(numel) * bprop::itemsize(tensor.dtype());
    if (tensor.dtype() == bprop::DType::Bool) {
      const bprop::Tensor c = tensor.contiguous();
      const auto* p = static_cast<const unsigned char*>(c.data());
      for (int64_t i = 0; i < c.numel(); ++i)
        if (p[i] > 1) finding("bool byte other than 0 or 1");
    }
    volatile uint64_t sink = checksum(tensor);
    (void)sink;
  }
  if (total != size - 8 - header_length) finding("tensors don't cover the data exactly");
  return 0;
}
