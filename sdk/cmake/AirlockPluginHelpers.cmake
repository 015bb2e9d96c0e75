# airlock_add_plugin_module(<target> SOURCES <src>... [LIBS <lib>...] [OUTPUT_DIRECTORY <dir>])
#
# Builds an Airlock plugin: a MODULE library named exactly <target>.so (no
# "lib" prefix), linked against Airlock::sdk, with hidden visibility so that
# only the entry point (airlock_plugin_entry_v1, exported by the SDK's
# AIRLOCK_*_PLUGIN macros) is visible. C++ sources get -fno-gnu-unique with
# GCC, so the host can really unload the plugin. The host refuses plugin files
# writable by group or others, so install them with mode 0755 or stricter.
include_guard(GLOBAL)

function(airlock_add_plugin_module target)
  cmake_parse_arguments(ARG "" "OUTPUT_DIRECTORY" "SOURCES;LIBS" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "airlock_add_plugin_module(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fno-gnu-unique>)
  endif()
  target_link_libraries(${target} PRIVATE Airlock::sdk ${ARG_LIBS})
endfunction()
