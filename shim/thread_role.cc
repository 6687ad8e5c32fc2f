// SPDX-License-Identifier: Apache-2.0
#include "thread_role.h"

#include "raw_syscall.h"

namespace pristine {

ABSL_CONST_INIT const ThreadRole kTemplateRole(Role::kTemplate);
ABSL_CONST_INIT const ThreadRole kSpareRole(Role::kSpare);
ABSL_CONST_INIT const ThreadRole kNewThreadRole(Role::kNewThread);
ABSL_CONST_INIT const ThreadRole kForkChildRole(Role::kForkChild);
ABSL_CONST_INIT const ThreadRole kSignalSafeRole(Role::kSignalSafe);

namespace thread_role_internal {
namespace {
__thread uint32_t t_roles __attribute__((tls_model("initial-exec"))) = 0;
}  // namespace

uint32_t CurrentRoles() { return t_roles; }
void Add(Role role) { t_roles |= Bits(role); }
void Remove(Role role) { t_roles &= ~Bits(role); }

void RoleViolation(const char* what, const char* file, int line) {
  // A checked build only: say where, then stop, with no library call.
  const char* parts[] = {"pristine: role check failed: ", what, " at ", file, "\n"};
  for (const char* p : parts) {
    long n = 0;
    while (p[n] != '\0') ++n;
    RawSyscall(SYS_write, 2, p, n);
  }
  (void)line;
  RawSyscall(SYS_kill, RawGetpid(), 6 /* SIGABRT */);
  for (;;) RawSyscall(SYS_exit_group, 134);
}

}  // namespace thread_role_internal
}  // namespace pristine
