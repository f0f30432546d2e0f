/* helpers.h - shared fixtures for unit tests: write a rules file, decide one line. */
#ifndef WH_TEST_HELPERS_H
#define WH_TEST_HELPERS_H

#include "engine/engine.h"
#include "rules/rules.h"

/* Writes text to a fresh temporary file and returns its path (static buffer rotation). */
const char *th_write_tmp(const char *name, const char *text);
/* Loads rules from YAML text; fails the test (with the diagnostics) if they do not load. */
wh_ruleset *th_rules(const char *yaml);
/* Loads rules that must fail; returns the diagnostics printed as text (malloc'd). */
char *th_lint(const char *yaml);
/* Decides one event line with rs; returns the decision line (static buffer). */
const char *th_decide(wh_ruleset *rs, const char *line);
const char *th_decide_explain(wh_ruleset *rs, const char *line);
/* Builds a message event line for text (JSON-escaped), id "t". */
const char *th_msg(const char *text);

#endif
