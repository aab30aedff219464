/*
 * native_frames_plugin.c — a shared library that test_native_frames loads
 * after its symbolizer has read the process's modules, to check that a
 * module loaded later is found, named and given lines.
 */

/* Defined on one line, so that every address in it has that line. */
int nf_plugin_function(int x) { return 3 * x + 1; }
const unsigned nf_plugin_line = __LINE__ - 1;
