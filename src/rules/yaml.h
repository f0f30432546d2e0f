/* yaml.h - parsing a YAML file (rules, config) with libfyaml, guarded and with diagnostics.
 *
 * Before libfyaml sees the text it is checked for what YAML forbids or what crashes
 * libfyaml 0.7.12 (invalid UTF-8, control characters, explicit '?' keys), each reported at
 * its line and column; libfyaml's own errors are collected the same way. */
#ifndef WH_YAML_H
#define WH_YAML_H

#include <libfyaml.h>
#include <stdint.h>

#include "base/diag.h"

/* The document of text[0..len) (which must outlive it), or NULL with diags added (path
 * names the file in them; what is "rules files" or "the config", for messages). Free with
 * fy_document_destroy. */
struct fy_document *wh_yaml_parse(const char *path, const char *text, size_t len, const char *what,
                                  wh_diags *diags);

/* 1-based line and column of a node (of its first scalar for a collection); 0 unknown. */
uint32_t wh_yaml_line(struct fy_node *n);
uint32_t wh_yaml_col(struct fy_node *n);

#endif
