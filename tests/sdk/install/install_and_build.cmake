# Steps of the SDK install test (run with cmake -P):
#   -DSTEP=install -DBUILD_DIR=<airlock build> -DWORK=<scratch>
#       installs component airlock_sdk into <scratch>/prefix and checks its layout
#   -DSTEP=build -DWORK=<scratch> -DEXAMPLE_DIR=<src> [-DGENERATOR= -DMAKE_PROGRAM= -DCXX_COMPILER=]
#       [-DBUILD_NAME=<dir> -DPRODUCTS=<files> -DWERROR_OPTION=<option>]
#       configures and builds an example (by default the connector: plugin and
#       conformance test) against <scratch>/prefix only
#   -DSTEP=conformance -DWORK=<scratch> -DCTEST=<ctest> [-DBUILD_NAME=<dir>]
#       runs the tests an example registered (by default the connector's: the
#       SDK's connector conformance kit against the built plugin)
cmake_minimum_required(VERSION 3.20)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " shown "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${shown}\n${out}\n${err}")
  endif()
endfunction()

if(STEP STREQUAL "install")
  file(REMOVE_RECURSE ${WORK})
  file(MAKE_DIRECTORY ${WORK})
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --component airlock_sdk --prefix ${WORK}/prefix)
  foreach(expected
      include/airlock/c/airlock_plugin.h
      include/airlock/c/arrow_c_data.h
      include/airlock/cpp/plugin.hpp
      include/airlock/cpp/arrow.hpp
      include/airlock/cpp/config_read.hpp
      include/airlock/testing/plugin_harness.hpp
      include/airlock/testing/connector_conformance.hpp
      include/airlock/testing/identity_conformance.hpp
      include/airlock/testing/isolator_conformance.hpp
      lib/cmake/AirlockSDK/AirlockSDKConfig.cmake
      lib/cmake/AirlockSDK/AirlockSDKConfigVersion.cmake
      lib/cmake/AirlockSDK/AirlockSDKTargets.cmake
      lib/cmake/AirlockSDK/AirlockPluginHelpers.cmake)
    if(NOT EXISTS ${WORK}/prefix/${expected})
      message(FATAL_ERROR "the SDK install lacks ${expected}")
    endif()
  endforeach()
  # Only the SDK: no kernel internals leak into the install.
  if(EXISTS ${WORK}/prefix/include/kernel)
    message(FATAL_ERROR "kernel headers were installed with the SDK")
  endif()
elseif(STEP STREQUAL "build")
  # BUILD_NAME / PRODUCTS / WERROR_OPTION name another example's build.
  if(NOT BUILD_NAME)
    set(BUILD_NAME example-build)
    set(PRODUCTS "sequence_connector.so;sequence_conformance_test")
    set(WERROR_OPTION SEQUENCE_WERROR)
  endif()
  set(build ${WORK}/${BUILD_NAME})
  file(REMOVE_RECURSE ${build})
  set(configure ${CMAKE_COMMAND} -S ${EXAMPLE_DIR} -B ${build}
      -DCMAKE_PREFIX_PATH=${WORK}/prefix
      -DCMAKE_BUILD_TYPE=Debug
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
      -D${WERROR_OPTION}=ON)
  if(GENERATOR)
    list(APPEND configure -G ${GENERATOR})
  endif()
  if(MAKE_PROGRAM)
    list(APPEND configure -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
  endif()
  if(CXX_COMPILER)
    list(APPEND configure -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
  endif()
  run(${configure})
  # The example must have used the installed package, not a source tree.
  file(STRINGS ${build}/CMakeCache.txt sdk_dir REGEX "^AirlockSDK_DIR:")
  string(FIND "${sdk_dir}" "${WORK}/prefix/" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the example found the SDK elsewhere: ${sdk_dir}")
  endif()
  run(${CMAKE_COMMAND} --build ${build})
  foreach(product ${PRODUCTS})
    if(NOT EXISTS ${build}/${product})
      message(FATAL_ERROR "the example did not produce ${product}")
    endif()
  endforeach()
elseif(STEP STREQUAL "conformance")
  if(NOT BUILD_NAME)
    set(BUILD_NAME example-build)
  endif()
  run(${CTEST} --test-dir ${WORK}/${BUILD_NAME} --output-on-failure --no-tests=error)
else()
  message(FATAL_ERROR "unknown STEP '${STEP}'")
endif()
