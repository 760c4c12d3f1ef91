# The wire codec's unit tests (owner: proto).
taskq_unit_test(test_proto test_proto.c LIBS taskq_proto)
# proto/limits.h shadows the system <limits.h> when proto/ is an -I directory
# (msgpack's pack_define.h needs the real one): see proto/CMakeLists.txt.
set_property(TARGET test_proto PROPERTY INCLUDE_DIRECTORIES ${PROJECT_SOURCE_DIR}/include)
target_compile_options(test_proto PRIVATE -iquote ${PROJECT_SOURCE_DIR}/proto)
