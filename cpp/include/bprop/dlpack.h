// DLPack: zero-copy exchange of tensors with other libraries (numpy, PyTorch, JAX, ...).
//
// The structs below are the DLPack 1.0 C ABI (https://dmlc.github.io/dlpack/latest/), written
// out here so that the core needs no third-party header. They live in namespace bprop::dlpack
// so that a program may include the reference dlpack.h too; the layouts are the ABI, the names
// are not.
//
// Ownership: a DLManagedTensor[Versioned] belongs to whoever holds the pointer, and its
// deleter is called exactly once, by its last owner.
//   to_dlpack*    returns a new one viewing the tensor's memory (no copy); it keeps the
//                 storage alive until its deleter runs. The caller owns it.
//   from_dlpack   on success takes ownership: the returned tensor views the producer's memory
//                 and calls the deleter when its storage is freed (or at once if it copied).
//                 On an exception it takes nothing: the caller still owns `managed` and must
//                 call its deleter (in Python, the unconsumed capsule does).
//
// Example:
//   bprop::dlpack::DLManagedTensorVersioned* m = bprop::to_dlpack_versioned(x);
//   bprop::Tensor y = bprop::from_dlpack(m);  // y shares x's memory
#pragma once

#include <cstdint>

#include "bprop/tensor.h"

namespace bprop {
namespace dlpack {

constexpr uint32_t kMajorVersion = 1;
constexpr uint32_t kMinorVersion = 0;

struct DLPackVersion {
  uint32_t major;
  uint32_t minor;
};

// Values of DLDevice::device_type (only kDLCPU is supported by bprop).
enum DLDeviceType : int32_t {
  kDLCPU = 1,
  kDLCUDA = 2,
  kDLCUDAHost = 3,
  kDLOpenCL = 4,
  kDLVulkan = 7,
  kDLMetal = 8,
  kDLVPI = 9,
  kDLROCM = 10,
  kDLROCMHost = 11,
  kDLExtDev = 12,
  kDLCUDAManaged = 13,
  kDLOneAPI = 14,
  kDLWebGPU = 15,
  kDLHexagon = 16,
};

struct DLDevice {
  DLDeviceType device_type;
  int32_t device_id;
};

// Values of DLDataType::code.
enum DLDataTypeCode : uint8_t {
  kDLInt = 0,
  kDLUInt = 1,
  kDLFloat = 2,
  kDLOpaqueHandle = 3,
  kDLBfloat = 4,
  kDLComplex = 5,
  kDLBool = 6,
};

struct DLDataType {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
};

struct DLTensor {
  void* data;  // the first element is at data + byte_offset
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;    // ndim entries
  int64_t* strides;  // ndim entries, in elements; null means compact row-major
  uint64_t byte_offset;
};

// The pre-1.0 ABI, still what consumers get when they don't ask for a version.
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

// Bits of DLManagedTensorVersioned::flags.
constexpr uint64_t kFlagReadOnly = uint64_t{1} << 0;  // DLPACK_FLAG_BITMASK_READ_ONLY
constexpr uint64_t kFlagIsCopied = uint64_t{1} << 1;  // DLPACK_FLAG_BITMASK_IS_COPIED

// The 1.0 ABI: the version comes first so that a consumer can check it before reading on.
struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned* self);
  uint64_t flags;
  DLTensor dl_tensor;
};

}  // namespace dlpack

// Exports a view of `tensor` (any strides, no copy). Throws std::runtime_error if the tensor
// requires grad (export tensor.detach()).
dlpack::DLManagedTensor* to_dlpack(const Tensor& tensor);
// The same in the 1.0 ABI; `flags` is stored as given (kFlagIsCopied for a copy made to export).
dlpack::DLManagedTensorVersioned* to_dlpack_versioned(const Tensor& tensor, uint64_t flags = 0);

// How from_dlpack may copy: Never throws where sharing is impossible; IfNeeded copies read-only
// (kFlagReadOnly) or misaligned data; Always copies.
enum class DLPackCopy : uint8_t { Never, IfNeeded, Always };

// Imports a CPU tensor of dtype float32, float64, int64 or bool, honouring byte_offset and any
// strides (zero and negative included). Other dtypes throw bprop::TypeError naming the dtype;
// other devices and other major versions throw std::invalid_argument. See the ownership rules
// above.
Tensor from_dlpack(dlpack::DLManagedTensor* managed, DLPackCopy copy = DLPackCopy::IfNeeded);
Tensor from_dlpack(dlpack::DLManagedTensorVersioned* managed,
                   DLPackCopy copy = DLPackCopy::IfNeeded);

}  // namespace bprop
