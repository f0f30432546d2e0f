/* cli.h - subcommands of the whiply binary (one file each). */
#ifndef WH_CLI_H
#define WH_CLI_H

int wh_cmd_check(int argc, char **argv);
int wh_cmd_rules(int argc, char **argv);
int wh_cmd_serve(int argc, char **argv);
int wh_cmd_token(int argc, char **argv);
int wh_cmd_audit(int argc, char **argv);
int wh_cmd_review(int argc, char **argv);
int wh_cmd_train(int argc, char **argv);
int wh_cmd_eval(int argc, char **argv);
int wh_cmd_publish(int argc, char **argv);
int wh_cmd_bus(int argc, char **argv);
int wh_cmd_replay(int argc, char **argv);

/* The Hyperscan database cache directory: $WHIPLY_CACHE_DIR, else $XDG_CACHE_HOME/whiply,
 * else ~/.cache/whiply. Returns a static buffer or NULL. */
const char *wh_default_cache_dir(void);

#define WH_EXIT_OK 0
#define WH_EXIT_IO 1
#define WH_EXIT_RULES 2
#define WH_EXIT_USAGE 64

#endif
