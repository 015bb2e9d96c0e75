# Runs a GoogleTest binary (BINARY) that must fail, and checks that the tests
# failing are exactly those named in EXPECTED_FAILURES (test names, without
# suite prefixes): a conformance kit run against a plugin broken on purpose
# proves that the kit catches what it claims to, and nothing else.
execute_process(COMMAND ${BINARY} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(rc EQUAL 0)
  message(FATAL_ERROR "${BINARY} passed, but the plugin is broken on purpose:\n${out}")
endif()
string(REGEX MATCHALL "\\[  FAILED  \\] [^ \n,]+\\.[^ \n,]+" failed_lines "${out}")
set(failed)
foreach(line ${failed_lines})
  string(REGEX REPLACE "^\\[  FAILED  \\] .*\\." "" name "${line}")
  list(APPEND failed ${name})
endforeach()
list(REMOVE_DUPLICATES failed)
list(SORT failed)
set(expected ${EXPECTED_FAILURES})
list(SORT expected)
if(NOT failed STREQUAL expected)
  message(FATAL_ERROR "expected exactly these to fail: ${expected}\nfailed: ${failed}\n${out}")
endif()
