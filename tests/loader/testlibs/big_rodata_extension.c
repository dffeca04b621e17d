/* A fake extension module with 1 MiB of read-only data (a segment the loader shares
 * with the original file and then releases from the copy's file). Built twice: with
 * PYFLEET_FORK_IN_CONSTRUCTOR its constructor forks a child that exits at once, i.e. a
 * fork happens while the copy is being loaded. */
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

void* PyLong_FromLong(long value);

static const unsigned char kTable[1 << 20] = {1, 2, 3};

EXPORT unsigned char big_rodata_byte(int i) { return kTable[i]; }
EXPORT void* big_rodata_python(void) { return PyLong_FromLong(4); }

#ifdef PYFLEET_FORK_IN_CONSTRUCTOR
__attribute__((constructor)) static void fork_once(void) {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  if (child > 0) waitpid(child, 0, 0);
}
#endif
