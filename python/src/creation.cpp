// Factories. The Python layer (bprop/_creation.py) turns PyTorch's *size varargs and dtype
// defaults into the explicit arguments these take.
#include "bindings.h"

namespace bprop::python {

void init_creation(py::module_& m) {
  m.def("_zeros", &zeros, py::arg("shape"), py::arg("dtype"));
  m.def("_ones", &ones, py::arg("shape"), py::arg("dtype"));
  m.def("_full", &full, py::arg("shape"), py::arg("value"), py::arg("dtype"));
  m.def("_arange", &arange, py::arg("start"), py::arg("end"), py::arg("step"), py::arg("dtype"));
  m.def("_linspace", &linspace, py::arg("start"), py::arg("end"), py::arg("steps"),
        py::arg("dtype"));
  m.def("_eye", &eye, py::arg("n"), py::arg("m"), py::arg("dtype"));
  m.def("_rand", &rand, py::arg("shape"), py::arg("dtype"));
  m.def("_randn", &randn, py::arg("shape"), py::arg("dtype"));
  m.def("_randint", &randint, py::arg("low"), py::arg("high"), py::arg("shape"), py::arg("dtype"));
  m.def("manual_seed", &manual_seed, py::arg("seed"),
        "Seeds the generator behind rand, randn and randint");
  export_name(m, "manual_seed");
  m.def("get_rng_state", &get_rng_state,
        "The state of the generator behind rand, randn and randint, as an int64 tensor");
  export_name(m, "get_rng_state");
  m.def("set_rng_state", &set_rng_state, py::arg("new_state"),
        "Restores a state get_rng_state() returned: the same draws follow again");
  export_name(m, "set_rng_state");
  m.def("initial_seed", &initial_seed,
        "The seed last given to manual_seed or seed(), or the generator's default one");
  export_name(m, "initial_seed");
  m.def("seed", &seed, "Reseeds the generator from the system's entropy; returns the seed");
  export_name(m, "seed");
}

}  // namespace bprop::python
