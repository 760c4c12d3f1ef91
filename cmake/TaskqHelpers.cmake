# Warnings, sanitizers and one-line test registration.

macro(taskq_set_warnings)
  add_compile_options(-Wall -Wextra -Wformat=2 -Wshadow -Wno-unused-parameter)
  if(TASKQ_WERROR)
    add_compile_options(-Werror)
  endif()
endmacro()

macro(taskq_set_sanitizers)
  if(TASKQ_SANITIZE)
    add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                        -fno-sanitize-recover=undefined)
    add_link_options(-fsanitize=address,undefined)
  endif()
endmacro()

# taskq_unit_test(name source... LIBS lib...): a cmocka test, label "unit".
function(taskq_unit_test name)
  cmake_parse_arguments(T "" "" "LIBS" ${ARGN})
  add_executable(${name} ${T_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 120
    ENVIRONMENT "TASKQ_VECTORS=${PROJECT_SOURCE_DIR}/tests/vectors")
endfunction()

# taskq_it_test(name source... [TIMEOUT s]): an integration test that runs the
# real binaries; label "it". The harness finds them through TASKQ_BIN_DIR.
function(taskq_it_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${name} ${T_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE taskq_harness taskq)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS it TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "TASKQ_BIN_DIR=${PROJECT_BINARY_DIR}/bin;TASKQ_TESTMODULE=$<TARGET_FILE:testtasks>")
endfunction()
