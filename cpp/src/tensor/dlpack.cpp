// DLPack export and import: see bprop/dlpack.h for the ownership rules.
#include "bprop/dlpack.h"

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bprop/ops.h"

namespace bprop {
namespace {

using dlpack::DLDataType;
using dlpack::DLManagedTensor;
using dlpack::DLManagedTensorVersioned;
using dlpack::DLTensor;

// What an exported DLManagedTensor[Versioned] owns: a handle on the tensor (which keeps the
// storage alive) and the shape and strides arrays the DLTensor points into.
struct ExportContext {
  Tensor tensor;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
};

DLDataType dl_dtype(DType dtype) {
  switch (dtype) {
    case DType::Bool:
      return {dlpack::kDLBool, 8, 1};
    case DType::Int64:
      return {dlpack::kDLInt, 64, 1};
    case DType::Float32:
      return {dlpack::kDLFloat, 32, 1};
    case DType::Float64:
      return {dlpack::kDLFloat, 64, 1};
  }
  throw std::logic_error("unknown dtype");
}

std::string dl_dtype_name(const DLDataType& t) {
  const char* kind = nullptr;
  switch (t.code) {
    case dlpack::kDLInt:
      kind = "int";
      break;
    case dlpack::kDLUInt:
      kind = "uint";
      break;
    case dlpack::kDLFloat:
      kind = "float";
      break;
    case dlpack::kDLBfloat:
      kind = "bfloat";
      break;
    case dlpack::kDLComplex:
      kind = "complex";
      break;
    case dlpack::kDLBool:
      kind = "bool";
      break;
  }
  std::string name =
      kind ? std::string(kind) + std::to_string(t.bits)
           : "(type code " + std::to_string(t.code) + ", " + std::to_string(t.bits) + " bits)";
  if (t.lanes != 1) name += "x" + std::to_string(t.lanes);
  return name;
}

DType bprop_dtype(const DLDataType& t) {
  if (t.lanes == 1) {
    if (t.code == dlpack::kDLBool && t.bits == 8) return DType::Bool;
    if (t.code == dlpack::kDLInt && t.bits == 64) return DType::Int64;
    if (t.code == dlpack::kDLFloat && t.bits == 32) return DType::Float32;
    if (t.code == dlpack::kDLFloat && t.bits == 64) return DType::Float64;
  }
  throw TypeError("[from_dlpack] unsupported dtype " + dl_dtype_name(t) +
                  "; supported: float32, float64, int64 and bool");
}

std::unique_ptr<ExportContext> make_context(const Tensor& tensor) {
  if (tensor.requires_grad())
    throw std::runtime_error(
        "[__dlpack__] can't export a tensor that requires grad; use tensor.detach()");
  return std::unique_ptr<ExportContext>(new ExportContext{
      tensor.detach(), std::vector<int64_t>(tensor.shape().begin(), tensor.shape().end()),
      std::vector<int64_t>(tensor.strides().begin(), tensor.strides().end())});
}

void fill(DLTensor& out, ExportContext* ctx) {
  out.data = ctx->tensor.data();
  out.device = {dlpack::kDLCPU, 0};
  out.ndim = static_cast<int32_t>(ctx->shape.size());
  out.dtype = dl_dtype(ctx->tensor.dtype());
  out.shape = ctx->shape.data();
  out.strides = ctx->strides.data();
  out.byte_offset = 0;
}

template <typename Managed>
void delete_exported(Managed* self) {
  delete static_cast<ExportContext*>(self->manager_ctx);
  delete self;
}

// The tensor a DLTensor describes; `owner` runs the producer's deleter when the storage goes.
// Throws (leaving ownership with the caller) before `owner` is made.
template <typename Managed>
Tensor import(Managed* managed, const DLTensor& t, bool read_only, DLPackCopy copy) {
  if (t.device.device_type != dlpack::kDLCPU && t.device.device_type != dlpack::kDLCUDAHost)
    throw std::invalid_argument("[from_dlpack] only CPU tensors are supported; got device type " +
                                std::to_string(t.device.device_type) + " (id " +
                                std::to_string(t.device.device_id) + ")");
  const DType dtype = bprop_dtype(t.dtype);
  if (t.ndim < 0) throw std::invalid_argument("[from_dlpack] negative ndim");
  Shape shape(t.shape, t.shape + t.ndim), strides;
  for (int64_t n : shape)
    if (n < 0)
      throw std::invalid_argument("[from_dlpack] negative size in shape " + shape_to_string(shape));
  strides = t.strides ? Shape(t.strides, t.strides + t.ndim) : contiguous_strides(shape);
  const int64_t size = static_cast<int64_t>(itemsize(dtype));
  char* first = static_cast<char*>(t.data) + t.byte_offset;
  const bool aligned = reinterpret_cast<uintptr_t>(first) % static_cast<uintptr_t>(size) == 0;
  const bool empty = shape_numel(shape) == 0;
  if (copy == DLPackCopy::Never && !empty) {
    if (read_only)
      throw std::invalid_argument(
          "[from_dlpack] the producer exported read-only memory and copy=False forbids a copy");
    if (!aligned)
      throw std::invalid_argument("[from_dlpack] the data is not aligned to its " +
                                  std::to_string(size) +
                                  "-byte elements and copy=False forbids a copy");
  }
  if (empty || copy == DLPackCopy::Always || read_only || !aligned) {
    Shape byte_strides(strides.size());
    for (size_t d = 0; d < strides.size(); ++d) byte_strides[d] = strides[d] * size;
    Tensor out =
        empty ? Tensor::empty(shape, dtype) : from_strided_data(first, shape, byte_strides, dtype);
    if (managed->deleter) managed->deleter(managed);
    return out;
  }
  std::shared_ptr<void> owner(managed, [](void* p) {
    auto* m = static_cast<Managed*>(p);
    if (m->deleter) m->deleter(m);
  });
  return view_external(first, shape, strides, dtype, std::move(owner));
}

}  // namespace

DLManagedTensor* to_dlpack(const Tensor& tensor) {
  std::unique_ptr<ExportContext> ctx = make_context(tensor);
  auto* managed = new DLManagedTensor{};
  fill(managed->dl_tensor, ctx.get());
  managed->manager_ctx = ctx.release();
  managed->deleter = &delete_exported<DLManagedTensor>;
  return managed;
}

DLManagedTensorVersioned* to_dlpack_versioned(const Tensor& tensor, uint64_t flags) {
  std::unique_ptr<ExportContext> ctx = make_context(tensor);
  auto* managed = new DLManagedTensorVersioned{};
  managed->version = {dlpack::kMajorVersion, dlpack::kMinorVersion};
  managed->flags = flags;
  fill(managed->dl_tensor, ctx.get());
  managed->manager_ctx = ctx.release();
  managed->deleter = &delete_exported<DLManagedTensorVersioned>;
  return managed;
}

Tensor from_dlpack(DLManagedTensor* managed, DLPackCopy copy) {
  if (!managed) throw std::invalid_argument("[from_dlpack] null DLManagedTensor");
  return import(managed, managed->dl_tensor, false, copy);
}

Tensor from_dlpack(DLManagedTensorVersioned* managed, DLPackCopy copy) {
  if (!managed) throw std::invalid_argument("[from_dlpack] null DLManagedTensorVersioned");
  // A newer major version may lay out the rest of the struct differently: read no further.
  if (managed->version.major != dlpack::kMajorVersion)
    throw std::invalid_argument("[from_dlpack] unsupported DLPack version " +
                                std::to_string(managed->version.major) + "." +
                                std::to_string(managed->version.minor) + "; bprop reads 1.x");
  return import(managed, managed->dl_tensor, (managed->flags & dlpack::kFlagReadOnly) != 0, copy);
}

}  // namespace bprop
