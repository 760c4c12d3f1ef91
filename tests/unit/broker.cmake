# Broker unit tests (cmocka): no network, no real clock.
foreach(t test_idmap test_lease test_registry)
  taskq_unit_test(${t} ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c LIBS taskq_broker_core)
endforeach()
foreach(t test_store test_store_counts test_store_policy test_store_flow test_store_history)
  taskq_unit_test(${t} ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c LIBS taskq_store)
endforeach()
# Pure dispatch-policy logic (cron, retry decisions).
foreach(t test_cron test_retrypol)
  taskq_unit_test(${t} ${CMAKE_CURRENT_SOURCE_DIR}/${t}.c LIBS taskq_policy)
endforeach()
