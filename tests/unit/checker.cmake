# The history checker (tests/support/checker.c) and the recorder's hash.
taskq_unit_test(test_checker ${CMAKE_CURRENT_SOURCE_DIR}/test_checker.c
                LIBS taskq_checker taskq_proto PkgConfig::SQLITE)
