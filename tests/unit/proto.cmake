# The wire codec's unit tests (owner: proto).
taskq_unit_test(test_proto test_proto.c LIBS taskq_proto)
