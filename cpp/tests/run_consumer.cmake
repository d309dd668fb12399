# Installs the bprop build tree into a fresh prefix, then configures, builds and runs the
# consumer project against that prefix. Any failure is fatal (the CTest test fails).
#
#   cmake -DBPROP_BUILD_DIR=... -DCONSUMER_SOURCE_DIR=... -DWORK_DIR=... [-DCONFIG=Release]
#         [-DGENERATOR=Ninja] [-DMAKE_PROGRAM=...] [-DCXX_COMPILER=...] [-DCXX_FLAGS=...]
#         [-DEXE_LINKER_FLAGS=...] [-DBPROP_SOURCE_DIR=...] [-DEXECUTABLE=bprop_consumer]
#         -P run_consumer.cmake
cmake_minimum_required(VERSION 3.18)

foreach(var BPROP_BUILD_DIR CONSUMER_SOURCE_DIR WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT CONFIG)
  set(CONFIG Release)
endif()
if(NOT EXECUTABLE)
  set(EXECUTABLE bprop_consumer)
endif()

set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(run step)
  list(JOIN ARGN " " command_line)
  message(STATUS "[consumer] ${step}: ${command_line}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "[consumer] ${step} failed (${rc}): ${command_line}")
  endif()
endfunction()

# 1. Install the library as a user would.
run(install "${CMAKE_COMMAND}" --install "${BPROP_BUILD_DIR}" --prefix "${prefix}" --config "${CONFIG}")

file(GLOB_RECURSE config_files "${prefix}/*/bpropConfig.cmake")
if(NOT config_files)
  message(FATAL_ERROR "[consumer] no bpropConfig.cmake under ${prefix}")
endif()
if(NOT EXISTS "${prefix}/include/bprop/bprop.h")
  message(FATAL_ERROR "[consumer] the headers were not installed to ${prefix}/include/bprop")
endif()
# The installed tree holds only bprop's own headers: nothing of Python or pybind11.
file(GLOB_RECURSE python_headers "${prefix}/*Python.h" "${prefix}/*pybind11*")
if(python_headers)
  message(FATAL_ERROR "[consumer] the install has Python headers: ${python_headers}")
endif()
file(GLOB_RECURSE installed_headers "${prefix}/include/*.h")
foreach(header IN LISTS installed_headers)
  file(STRINGS "${header}" python_includes REGEX "#include [<\"](Python|pybind11)")
  if(python_includes)
    message(FATAL_ERROR "[consumer] ${header} includes Python: ${python_includes}")
  endif()
endforeach()
# The installed package must not point back into the source or build tree.
file(GLOB_RECURSE package_files "${prefix}/*.cmake")
foreach(file IN LISTS package_files)
  file(READ "${file}" text)
  foreach(tree BPROP_SOURCE_DIR BPROP_BUILD_DIR)
    if(${tree})
      string(FIND "${text}" "${${tree}}" at)
      if(NOT at EQUAL -1)
        message(FATAL_ERROR "[consumer] installed ${file} refers to ${${tree}}")
      endif()
    endif()
  endforeach()
endforeach()

# 2. Configure the consumer against the installed prefix only.
set(configure_args -S "${CONSUMER_SOURCE_DIR}" -B "${build}" "-DCMAKE_PREFIX_PATH=${prefix}"
    "-DCMAKE_BUILD_TYPE=${CONFIG}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(GENERATOR)
  list(APPEND configure_args -G "${GENERATOR}")
endif()
if(MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(CXX_COMPILER)
  list(APPEND configure_args "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
endif()
# The library's own flags (e.g. sanitizers) must reach the consumer's link too.
if(CXX_FLAGS)
  list(APPEND configure_args "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
endif()
if(EXE_LINKER_FLAGS)
  list(APPEND configure_args "-DCMAKE_EXE_LINKER_FLAGS=${EXE_LINKER_FLAGS}")
endif()
run(configure "${CMAKE_COMMAND}" ${configure_args})

# It must have found the installed package, not some other bprop.
file(STRINGS "${build}/CMakeCache.txt" found_dir REGEX "^bprop_DIR:")
string(REGEX REPLACE "^bprop_DIR:[A-Z]+=" "" found_dir "${found_dir}")
get_filename_component(found_dir "${found_dir}" REALPATH)
get_filename_component(real_prefix "${prefix}" REALPATH)
string(FIND "${found_dir}" "${real_prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "[consumer] found bprop in ${found_dir}, not in ${real_prefix}")
endif()

# 3. Build and run it.
run(build "${CMAKE_COMMAND}" --build "${build}" --config "${CONFIG}")
file(GLOB_RECURSE exes "${build}/${EXECUTABLE}" "${build}/${EXECUTABLE}.exe")
if(NOT exes)
  message(FATAL_ERROR "[consumer] no ${EXECUTABLE} executable under ${build}")
endif()
list(GET exes 0 exe)
run(run "${exe}")
