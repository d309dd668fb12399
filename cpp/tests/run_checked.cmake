# Small CTest drivers, run with cmake -P:
#   -DMODE=subdirectory -DBPROP_SOURCE_DIR=... -DCONSUMER_SOURCE_DIR=... -DWORK_DIR=...
#       [-DEXECUTABLE=bprop_consumer[;another...]]
#       builds a project that takes bprop in with add_subdirectory and runs each executable;
#   -DMODE=no_python -DLIBRARY=... -DNM=...
#       fails if the core library references any Python symbol;
#   -DMODE=isa_linkage -DLIBRARY=... -DNM=...
#       fails if a file built for one instruction set (vector_kernels_<isa>.cpp,
#       gemm_micro_<isa>.cpp) defines any external symbol but its own table function: an
#       inline function or template with external linkage compiled there is merged by the
#       linker with the other paths' copies, and one path's instructions run on every path.
cmake_minimum_required(VERSION 3.18)

if(MODE STREQUAL "subdirectory")
  if(NOT EXECUTABLE)
    set(EXECUTABLE bprop_consumer)
  endif()
  file(REMOVE_RECURSE "${WORK_DIR}")
  # Debug: the build type an app's developer works in (assertions on), and half the compile
  # time of Release (28 against 52 s, 2 cores); the installed-package consumers build in the
  # main build's type.
  set(args -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}" "-DBPROP_SOURCE_DIR=${BPROP_SOURCE_DIR}"
      -DCMAKE_BUILD_TYPE=Debug)
  if(GENERATOR)
    list(APPEND args -G "${GENERATOR}")
  endif()
  set(steps configure build)
  foreach(executable IN LISTS EXECUTABLE)
    list(APPEND steps "run ${executable}")
  endforeach()
  foreach(step IN LISTS steps)
    if(step STREQUAL "configure")
      set(command "${CMAKE_COMMAND}" ${args})
    elseif(step STREQUAL "build")
      set(command "${CMAKE_COMMAND}" --build "${WORK_DIR}")
    else()
      string(REPLACE "run " "" executable "${step}")
      set(command "${WORK_DIR}/${executable}")
    endif()
    execute_process(COMMAND ${command} RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "[subdirectory consumer] ${step} failed (${rc})")
    endif()
  endforeach()
elseif(MODE STREQUAL "no_python")
  execute_process(COMMAND "${NM}" -C "${LIBRARY}" OUTPUT_VARIABLE symbols RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nm failed on ${LIBRARY}")
  endif()
  string(REGEX MATCHALL "[^\n]* (Py|_Py)[A-Za-z_]+[^\n]*" python_symbols "${symbols}")
  if(python_symbols)
    message(FATAL_ERROR "the core references Python: ${python_symbols}")
  endif()
  message(STATUS "no Python symbols in ${LIBRARY}")
elseif(MODE STREQUAL "isa_linkage")
  execute_process(COMMAND "${NM}" -C --defined-only -g "${LIBRARY}" OUTPUT_VARIABLE symbols
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nm failed on ${LIBRARY}")
  endif()
  string(REPLACE "\n" ";" lines "${symbols}")
  set(member "")
  set(checked 0)
  foreach(line IN LISTS lines)
    if(line MATCHES "^(.*\\.o)\\)?:$")  # GNU nm: "x.cpp.o:"; BSD nm: "lib.a(x.cpp.o):"
      set(member "${CMAKE_MATCH_1}")
      set(isa "")
      if(member MATCHES "(vector_kernels|gemm_micro)_(scalar|avx2|avx512)\\.cpp\\.o$")
        set(isa "${CMAKE_MATCH_2}")
        math(EXPR checked "${checked} + 1")
      endif()
    elseif(isa AND line MATCHES " [A-Za-z] ")
      # Besides the table, only the C++ unwinding personality's pointer, which a function that
      # unwinds (an -O1 sanitizer build's, with cleanups) refers to: libstdc++'s, no one path's.
      if(NOT line MATCHES " T bprop::kernels::(vector|micro)_kernels_${isa}\\(\\)$"
         AND NOT line MATCHES " V DW\\.ref\\.__gxx_personality_v0$")
        message(FATAL_ERROR "${member} defines an external symbol besides its table, which "
                            "the other instruction-set paths may end up running: ${line}")
      endif()
    endif()
  endforeach()
  if(NOT checked EQUAL 6)
    message(FATAL_ERROR "expected the 6 per-instruction-set objects in ${LIBRARY}, found ${checked}")
  endif()
  message(STATUS "the per-instruction-set objects export only their tables")
else()
  message(FATAL_ERROR "run_checked.cmake: unknown MODE=${MODE}")
endif()
