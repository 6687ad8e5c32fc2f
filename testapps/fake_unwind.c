/* SPDX-License-Identifier: Apache-2.0 */
/* A library that poses as libunwind.so.8 inside a chroot (pytests/test_evidence.py): if the
 * library ever loaded it from a thread that entered the chroot, its constructor would leave
 * /pwned there. */
#include <fcntl.h>
#include <unistd.h>

__attribute__((constructor)) static void Pwned(void) {
  int fd = open("/pwned", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) close(fd);
}

int unw_backtrace(void** buffer, int size) {
  (void)buffer;
  (void)size;
  return 0;
}
