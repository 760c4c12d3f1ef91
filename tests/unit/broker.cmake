# Broker unit tests (cmocka). The include path is the broker's quote path
# (see broker/CMakeLists.txt: proto/limits.h must not shadow <limits.h>).
foreach(t test_idmap test_lease test_registry test_store)
  taskq_unit_test(${t} ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c LIBS taskq_broker_core)
  set_property(TARGET ${t} PROPERTY INCLUDE_DIRECTORIES ${PROJECT_SOURCE_DIR}/include)
endforeach()
