// Tensor: attributes, numpy interop, autograd entry points.
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "bindings.h"
#include "new_instance.h"

namespace bprop::python {
namespace {

py::dtype numpy_dtype(DType dtype) {
  return visit_element_type(dtype, [](auto t) { return py::dtype::of<decltype(t)>(); });
}

// The bprop dtype of a numpy array, or TypeError naming `op`.
DType dtype_of(const py::array& array, const char* op) {
  const char kind = array.dtype().kind();
  const auto size = array.dtype().itemsize();
  if (kind == 'b' && size == 1) return DType::Bool;
  if (kind == 'i' && size == 8) return DType::Int64;
  if (kind == 'f' && size == 4) return DType::Float32;
  if (kind == 'f' && size == 8) return DType::Float64;
  throw TypeError(std::string("[") + op + "] can't convert a numpy array of dtype " +
                  py::str(array.dtype()).cast<std::string>() +
                  "; supported: float32, float64, int64 and bool");
}

Shape shape_of(const py::array& array) {
  return Shape(array.shape(), array.shape() + array.ndim());
}
Shape byte_strides_of(const py::array& array) {
  return Shape(array.strides(), array.strides() + array.ndim());
}

// A copy of any numpy array of a supported dtype, whatever its strides and memory order.
Tensor copy_from_numpy(const py::array& array) {
  if (!array.dtype().attr("isnative").cast<bool>())
    throw TypeError("[tensor] numpy arrays with non-native byte order are not supported");
  return from_strided_data(array.data(), shape_of(array), byte_strides_of(array),
                           dtype_of(array, "tensor"));
}

// A tensor sharing the array's memory; the array stays alive while the tensor does.
Tensor share_numpy(const py::array& array) {
  DType dtype = dtype_of(array, "from_numpy");
  // Sharing read-only memory would let an in-place update (an optimizer step) write to it.
  if (!array.writeable())
    throw std::invalid_argument(
        "[from_numpy] the numpy array is read-only; use bprop.tensor(array) for a copy");
  if (!array.dtype().attr("isnative").cast<bool>())
    throw TypeError("[from_numpy] numpy arrays with non-native byte order are not supported");
  const int64_t size = static_cast<int64_t>(itemsize(dtype));
  // The kernels read elements as their type; from a misaligned address that is undefined.
  if (reinterpret_cast<uintptr_t>(array.data()) % static_cast<uintptr_t>(size) != 0)
    throw std::invalid_argument("[from_numpy] the numpy array's data is not aligned to its " +
                                std::to_string(size) +
                                "-byte elements; use bprop.tensor(array) for a copy");
  Shape shape = shape_of(array), strides(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    const int64_t stride = array.strides()[d];
    if (stride % size != 0)
      throw std::invalid_argument("[from_numpy] stride " + std::to_string(stride) +
                                  " is not a multiple of the element size " + std::to_string(size));
    strides[d] = stride / size;
  }
  auto owner = std::shared_ptr<void>(new py::object(array), [](void* object) {
    py::gil_scoped_acquire gil;
    delete static_cast<py::object*>(object);
  });
  return view_external(static_cast<char*>(const_cast<void*>(array.data())), shape, strides, dtype,
                       std::move(owner));
}

// The tensor's strides in bytes, as numpy and the buffer protocol count them.
std::vector<py::ssize_t> byte_strides(const Tensor& tensor) {
  const auto size = static_cast<py::ssize_t>(itemsize(tensor.dtype()));
  std::vector<py::ssize_t> strides;
  for (int64_t s : tensor.strides()) strides.push_back(s * size);
  return strides;
}

// A numpy array viewing the tensor's memory; it keeps the storage alive.
py::array to_numpy(const Tensor& tensor) {
  check_not_capturing("reading a tensor's values in Python (numpy(), tolist(), printing)");
  if (tensor.requires_grad())
    throw std::runtime_error(
        "[numpy] can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()");
  std::vector<py::ssize_t> shape(tensor.shape().begin(), tensor.shape().end());
  py::capsule owner(new Tensor(tensor.detach()), [](void* p) { delete static_cast<Tensor*>(p); });
  return py::array(numpy_dtype(tensor.dtype()), shape, byte_strides(tensor), tensor.data(), owner);
}

// The buffer protocol (memoryview(t), and numpy's first choice in np.asarray): a writable view
// of the tensor's memory. Python keeps the Tensor object, hence its storage, alive meanwhile.
py::buffer_info tensor_buffer(const Tensor& tensor) {
  check_not_capturing("reading a tensor's values in Python (numpy(), tolist(), printing)");
  if (tensor.requires_grad())
    throw py::buffer_error(
        "[memoryview] can't expose the memory of a tensor that requires grad; use "
        "tensor.detach()");
  const auto size = static_cast<py::ssize_t>(itemsize(tensor.dtype()));
  std::vector<py::ssize_t> shape(tensor.shape().begin(), tensor.shape().end());
  const std::string format = visit_element_type(tensor.dtype(), [](auto t) {
    return std::string(py::format_descriptor<decltype(t)>::format());
  });
  return py::buffer_info(tensor.data(), size, format, static_cast<py::ssize_t>(shape.size()), shape,
                         byte_strides(tensor), /*readonly=*/false);
}

// ---- DLPack capsules: https://dmlc.github.io/dlpack/latest/python_spec.html ----
// A capsule named "dltensor[_versioned]" owns its DLManagedTensor[Versioned]; the consumer
// renames it "used_dltensor[_versioned]" when it takes ownership, and an unconsumed capsule
// calls the deleter when it is destroyed.

constexpr const char* kCapsule = "dltensor";
constexpr const char* kCapsuleVersioned = "dltensor_versioned";
constexpr const char* kUsedCapsule = "used_dltensor";
constexpr const char* kUsedCapsuleVersioned = "used_dltensor_versioned";

template <typename Managed>
void delete_unconsumed(PyObject* capsule, const char* name) {
  if (!PyCapsule_IsValid(capsule, name)) return;  // consumed (renamed): not ours any more
  auto* managed = static_cast<Managed*>(PyCapsule_GetPointer(capsule, name));
  if (managed && managed->deleter) managed->deleter(managed);
}
void delete_capsule(PyObject* capsule) {
  delete_unconsumed<dlpack::DLManagedTensor>(capsule, kCapsule);
}
void delete_capsule_versioned(PyObject* capsule) {
  delete_unconsumed<dlpack::DLManagedTensorVersioned>(capsule, kCapsuleVersioned);
}

py::capsule to_dlpack_capsule(const Tensor& tensor, bool versioned, bool copy) {
  check_not_capturing("exporting a tensor with __dlpack__");
  // BufferError, as PyTorch's __dlpack__ and the Python DLPack spec raise for a refused export.
  if (tensor.requires_grad())
    throw py::buffer_error(
        "[__dlpack__] can't export a tensor that requires grad; use tensor.detach().__dlpack__()");
  const Tensor exported = copy ? tensor.clone() : tensor;
  PyObject* capsule =
      versioned ? PyCapsule_New(to_dlpack_versioned(exported, copy ? dlpack::kFlagIsCopied : 0),
                                kCapsuleVersioned, &delete_capsule_versioned)
                : PyCapsule_New(to_dlpack(exported), kCapsule, &delete_capsule);
  if (!capsule) throw py::error_already_set();
  return py::reinterpret_steal<py::capsule>(capsule);
}

template <typename Managed>
Tensor consume(PyObject* capsule, const char* name, const char* used_name, DLPackCopy copy) {
  auto* managed = static_cast<Managed*>(PyCapsule_GetPointer(capsule, name));
  if (!managed) throw py::error_already_set();
  Tensor out = from_dlpack(managed, copy);  // on an exception the capsule still owns it
  if (PyCapsule_SetName(capsule, used_name) != 0) throw py::error_already_set();
  return out;
}

Tensor from_dlpack_capsule(const py::capsule& capsule, std::optional<bool> copy) {
  const DLPackCopy mode =
      !copy ? DLPackCopy::IfNeeded : (*copy ? DLPackCopy::Always : DLPackCopy::Never);
  PyObject* c = capsule.ptr();
  if (PyCapsule_IsValid(c, kCapsuleVersioned))
    return consume<dlpack::DLManagedTensorVersioned>(c, kCapsuleVersioned, kUsedCapsuleVersioned,
                                                     mode);
  if (PyCapsule_IsValid(c, kCapsule))
    return consume<dlpack::DLManagedTensor>(c, kCapsule, kUsedCapsule, mode);
  const char* name = PyCapsule_GetName(c);
  if (!name) PyErr_Clear();
  const std::string got = name ? name : "";
  if (got == kUsedCapsule || got == kUsedCapsuleVersioned)
    throw std::invalid_argument(
        "[from_dlpack] this DLPack capsule was already consumed; a capsule can be imported "
        "once (call __dlpack__() again for a new one)");
  throw TypeError(
      "[from_dlpack] expected a DLPack capsule named 'dltensor' or "
      "'dltensor_versioned', got a capsule named '" +
      got + "'");
}

}  // namespace

void init_tensor(py::module_& m) {
  py::class_<Node, std::shared_ptr<Node>> node_class(m, "Node",
                                                     "A node of the autograd graph (a grad_fn)");
  new_refuses(node_class, "graph nodes are made by operations (a tensor's grad_fn)");
  node_class.def("name", &Node::name)
      .def_property_readonly(
          "next_functions",
          [](const Node& node) {
            py::list out;
            for (const Edge& edge : node.next_edges())
              out.append(py::make_tuple(edge.node ? py::cast(edge.node) : py::none(), 0));
            return py::tuple(out);
          })
      .def("__repr__", [](const Node& node) {
        char address[32];
        std::snprintf(address, sizeof(address), "%p", static_cast<const void*>(&node));
        return "<" + node.name() + " object at " + address + ">";
      });

  py::class_<Tensor> tensor_class(m, "Tensor", py::buffer_protocol(),
                                  "An n-d array that can record operations for autograd");
  // Tensor.__new__(Tensor) is an empty tensor of the default dtype, as in PyTorch, and __init__
  // rebinds it: see Note [objects made without __init__] in new_instance.h.
  new_makes_value(tensor_class, [] { return zeros({0}); });
  {
    // Named _init (pybind11 skips any function named __init__ on an instance that has its
    // value), so the signature that stubs read is written out under the attribute's name.
    py::options options;
    options.disable_function_signatures();
    tensor_class.attr("__init__") = py::cpp_function(
        [](Tensor& self, const Tensor& data) { self = data.detach(); }, py::name("_init"),
        py::is_method(tensor_class), py::arg("data"),
        "__init__(self: bprop._core.Tensor, data: bprop._core.Tensor) -> None\n\n"
        "A leaf sharing data's storage (subclasses such as nn.Parameter start here)");
  }
  tensor_class.def_buffer(&tensor_buffer)
      .def_property_readonly("shape", &Tensor::shape, "The size of each dimension, a tuple")
      .def_property_readonly("ndim", &Tensor::ndim, "The number of dimensions")
      .def_property_readonly("dtype", &Tensor::dtype, "The element type (bprop.float32, ...)")
      .def("dim", &Tensor::ndim, "The number of dimensions (ndim)")
      .def("numel", &Tensor::numel, "The number of elements")
      .def(
          "size", [](const Tensor& t) { return t.shape(); },
          "The shape, or with dim the size of that dimension")
      .def("size", &Tensor::size, py::arg("dim"))
      .def(
          "stride", [](const Tensor& t) { return t.strides(); },
          "The strides in elements, or with dim the stride of that dimension")
      .def("stride", &Tensor::stride, py::arg("dim"))
      .def("is_contiguous", &Tensor::is_contiguous, "Whether the elements lie in row-major order")
      .def("contiguous", &Tensor::contiguous, "self if contiguous, else a contiguous copy")
      .def("clone", &Tensor::clone, "A copy with its own memory (differentiable)")
      .def("detach", &Tensor::detach, "A tensor sharing the memory, outside the graph")
      .def_property(
          "data", &Tensor::detach,
          [](Tensor& t, const Tensor& other) {
            check_not_capturing("setting .data");
            t.set_data(other);
          },
          R"pbdoc(detach(): the values without the graph.

Setting it (t.data = other) makes t share other's values, shape and dtype while t keeps its
identity, requires_grad, .grad and hooks, as PyTorch's setter.)pbdoc")
      .def_property(
          "requires_grad", &Tensor::requires_grad,
          [](Tensor& t, bool value) { t.set_requires_grad(value); },
          "Whether ops on this tensor record the graph for backward")
      .def("requires_grad_", &Tensor::set_requires_grad, py::arg("requires_grad") = true,
           py::return_value_policy::reference_internal,
           "Sets requires_grad (a leaf only) in place; returns self")
      .def("retain_grad", &retain_grad,
           "Makes backward also store the gradient of this non-leaf in its .grad (a no-op on "
           "a leaf)")
      .def_property_readonly("retains_grad", &retains_grad,
                             "Whether retain_grad() was called on this non-leaf")
      .def_property_readonly("is_leaf", &Tensor::is_leaf,
                             "True unless an op that requires grad made this tensor")
      .def_property_readonly("grad_fn", &Tensor::grad_fn,
                             "The graph node that made this tensor, or None for a leaf")
      .def_property(
          "grad",
          [](const Tensor& t) -> py::object {
            Tensor g = t.grad();
            return g.defined() ? py::cast(g) : py::none();
          },
          [](Tensor& t, const std::optional<Tensor>& g) { t.set_grad(g ? *g : Tensor()); },
          "The gradient backward() accumulated into this leaf, or None")
      .def(
          "backward",
          [](const Tensor& t, const std::optional<Tensor>& gradient,
             std::optional<bool> retain_graph, bool create_graph) {
            t.backward(gradient ? *gradient : Tensor(), retain_graph, create_graph);
          },
          py::arg("gradient") = py::none(), py::arg("retain_graph") = py::none(),
          py::arg("create_graph") = false, py::call_guard<py::gil_scoped_release>(),
          R"pbdoc(Accumulates the gradient of this tensor into the .grad of the leaves.

Runs without the GIL: other Python threads run meanwhile.)pbdoc")
      .def("item", &Tensor::item, "The value of a one-element tensor as a Python number")
      .def("numpy", &to_numpy, "A numpy array sharing this tensor's memory")
      .def("_is_same", &Tensor::is_same)
      .def_property_readonly("_version", [](const Tensor& t) { return t.storage()->version(); });

  export_name(m, "Tensor");
  m.def("_tensor_from_numpy", &copy_from_numpy, py::arg("array"));
  m.def("_to_dlpack_capsule", &to_dlpack_capsule, py::arg("tensor"), py::arg("versioned"),
        py::arg("copy"),
        "A DLPack capsule viewing the tensor (a copy's if copy): 'dltensor_versioned' (DLPack "
        "1.0) if versioned, else 'dltensor'");
  m.def("_from_dlpack_capsule", &from_dlpack_capsule, py::arg("capsule"), py::arg("copy"),
        "Consumes a DLPack capsule: a tensor sharing its memory (copy=None copies read-only "
        "or misaligned data, copy=False refuses to, copy=True always copies)");
  m.def("from_numpy", &share_numpy, py::arg("array"),
        "A tensor sharing memory with a numpy array (float32, float64, int64 or bool)");
  export_name(m, "from_numpy");
  // Defined once Tensor is registered, so that the signature names it.
  node_class.def_property_readonly(
      "variable",  // PyTorch's name: the leaf of an AccumulateGrad node, else None
      [](const Node& node) -> std::optional<Tensor> {
        const std::shared_ptr<TensorImpl>* leaf = node.accumulated_leaf();
        if (!leaf) return std::nullopt;
        return Tensor(*leaf);
      });
}

}  // namespace bprop::python
