# Worker unit tests (owner: worker). cmocka, no network.
taskq_unit_test(test_chan test_chan.c LIBS taskq_worker_core)
taskq_unit_test(test_pool test_pool.c LIBS taskq_worker_core)
taskq_unit_test(test_taskfn test_taskfn.c LIBS taskq_worker_core)
taskq_unit_test(test_taskfifo test_taskfifo.c LIBS taskq_worker_core)
taskq_unit_test(test_qspec test_qspec.c LIBS taskq_worker_core)
# test_taskfn dlopens libtesttasks.so, whose taskq_* calls resolve against
# the test executable; test_pool execs the real taskq-worker as a child.
set_target_properties(test_taskfn PROPERTIES ENABLE_EXPORTS ON)
add_dependencies(test_taskfn testtasks)
target_compile_definitions(test_taskfn PRIVATE TESTTASKS_PATH="$<TARGET_FILE:testtasks>")
add_dependencies(test_pool testtasks taskq-worker)
target_compile_definitions(test_pool PRIVATE TESTTASKS_PATH="$<TARGET_FILE:testtasks>"
  WORKER_EXE="$<TARGET_FILE:taskq-worker>")
