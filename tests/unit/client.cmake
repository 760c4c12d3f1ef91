# Client unit tests (owner: client). No network, no clock.
taskq_unit_test(test_json test_json.c ${PROJECT_SOURCE_DIR}/client/cli/json.c
  LIBS PkgConfig::JANSSON PkgConfig::MSGPACK)
target_include_directories(test_json PRIVATE ${PROJECT_SOURCE_DIR}/client/cli)

taskq_unit_test(test_outbox test_outbox.c ${PROJECT_SOURCE_DIR}/client/outbox.c)
target_include_directories(test_outbox PRIVATE ${PROJECT_SOURCE_DIR}/client)

# CLI value parsers and renderers (client/cli/parse.c, render.c): no broker.
taskq_unit_test(test_cliparse test_cliparse.c ${PROJECT_SOURCE_DIR}/client/cli/parse.c
  ${PROJECT_SOURCE_DIR}/client/cli/render.c ${PROJECT_SOURCE_DIR}/client/cli/json.c
  LIBS taskq_proto PkgConfig::JANSSON PkgConfig::MSGPACK m)
target_include_directories(test_cliparse PRIVATE ${PROJECT_SOURCE_DIR}/client/cli)

# Workflows without a broker: graph planning and map chunking (client/flow.c)
# and what libtaskq refuses before sending (the handle points at a dead port).
taskq_unit_test(test_flow test_flow.c ${PROJECT_SOURCE_DIR}/client/flow.c
  LIBS taskq taskq_proto PkgConfig::MSGPACK)
target_include_directories(test_flow PRIVATE ${PROJECT_SOURCE_DIR}/client)
