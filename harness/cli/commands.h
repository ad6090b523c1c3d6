/* commands.h — the subcommands of the linattn CLI.  Each is `int cmd_X(int argc, char **argv)`
 * where argv[0] is the subcommand name; it returns the process exit code (0 ok, 1 failure,
 * 2 bad input).  main.c holds the table that maps names to these functions; each command lives
 * in its own file, cmd_NAME.c beside this one, and reads its options through options.h
 * (docs/HACKING.md "Adding a command / an option").
 */
#ifndef LA_COMMANDS_H
#define LA_COMMANDS_H

int cmd_list(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_capture(int argc, char **argv);
int cmd_fit(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_featuremap(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_capacity(int argc, char **argv);

#endif
