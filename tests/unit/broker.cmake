# Broker unit tests (cmocka): no network, no real clock.
foreach(t test_idmap test_lease test_registry)
  taskq_unit_test(${t} ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c LIBS taskq_broker_core)
endforeach()
foreach(t test_store test_store_counts)
  taskq_unit_test(${t} ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c LIBS taskq_store)
endforeach()
# test_cron / test_retrypol (LIBS taskq_policy) are added below by their author.
