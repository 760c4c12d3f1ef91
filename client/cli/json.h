/*
 * json.h - JSON <-> msgpack for the taskq CLI, through jansson.
 *
 * JSON -> msgpack keeps integer and real apart (jansson does), and maps
 * strings, bools, null, arrays and objects one to one.
 * msgpack -> JSON never fails on odd input (only on out of memory):
 *   - bin becomes a base64 string; ext becomes null (counted in *lossy);
 *   - a positive integer above INT64_MAX becomes a real (counted in *lossy);
 *   - map keys that are not strings are stringified (123 -> "123",
 *     other keys -> their compact JSON text);
 *   - a string that is not valid UTF-8 has each bad byte replaced by U+FFFD.
 * Returned json_t references are new (caller owns, json_decref).
 */
#ifndef TASKQ_CLI_JSON_H
#define TASKQ_CLI_JSON_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>

#include "taskq.h"

/* Packs one JSON value. TASKQ_ENOMEM if the packer's buffer fails. */
taskq_err_t json_to_msgpack(const json_t *v, msgpack_packer *pk);
/* Parses JSON text (any value, not only arrays/objects) and packs it into
 * *out (malloc'd, caller frees). TASKQ_EINVAL with a message in errbuf if
 * the text is not JSON; TASKQ_ENOMEM. */
taskq_err_t json_text_to_msgpack(const char *text, void **out, size_t *out_len, char *errbuf,
                                 size_t errsz);
/* Converts a msgpack object. NULL only on out of memory. lossy may be NULL;
 * otherwise it is incremented for each ext or out-of-range integer. */
json_t *json_from_msgpack(const msgpack_object *o, int *lossy);
/* Unpacks one msgpack value from bytes and converts it. Empty input -> null.
 * TASKQ_EPROTO if the bytes are not one msgpack value; TASKQ_ENOMEM. */
taskq_err_t json_from_msgpack_bytes(const void *data, size_t len, json_t **out, int *lossy);
/* Standard base64 (with padding) of len bytes; malloc'd, NUL-terminated;
 * NULL on out of memory. */
char *json_base64(const void *data, size_t len);

#endif
