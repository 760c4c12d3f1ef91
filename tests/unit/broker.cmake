# Broker unit tests (cmocka): no network, no real clock.
foreach(t test_idmap test_lease test_registry test_store test_store_counts)
  taskq_unit_test(${t} ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c LIBS taskq_broker_core)
endforeach()
