// SPDX-License-Identifier: Apache-2.0
// Which thread the library's code runs on, in a form the compiler checks.
//
// The library's code runs on threads of five kinds besides the program's
// ordinary ones, and what it may do differs on each:
//
//   role             who                                       may not
//   ───────────────  ────────────────────────────────────────  ────────────────────────────────
//   template         TemplateMain and the requests it runs     wait for the template, call into
//                                                              the dynamic loader, run program
//                                                              code (template_thread.h)
//   spare            SpareMain, before the program's routine   the same, until it runs it
//   new thread       ChildStart, before the program's routine  allocate, take locks, call into
//                                                              the loader: it runs in a state its
//                                                              creator set up
//   fork child       the atfork child handler                  take a lock another thread may
//                                                              have held at the fork (reset
//                                                              them first)
//   signal-safe      the entry points a signal handler may     take any lock, initialise, look up
//                    call (pthread_sigmask, sigprocmask,       a function
//                    syscall(SYS_rt_sigprocmask))
//
// Each role is a capability of clang's thread-safety analysis
// (absl/base/thread_annotations.h): the code that plays it declares so
// (a ScopedRole at the top of the function that starts it, such as
// TemplateMain), functions written for it require it
// (PRISTINE_REQUIRES_ROLE), and functions it must never reach exclude it
// (PRISTINE_EXCLUDES_ROLE): -Wthread-safety then rejects, at build time, a
// template that waits for the template or a signal-safe entry point that
// reaches a lock. (pytests/test_thread_safety.py builds with clang.)
//
// In a checked build (-DPRISTINE_CHECKS=ON: the unit tests and the checked
// library the suite also runs) each role is also recorded per thread, and
// PRISTINE_CHECK_ROLE / PRISTINE_CHECK_NOT_ROLE stop the program where the
// analysis cannot see (through function pointers, across files it cannot
// follow). In a release build they compile to nothing: a library inside
// someone else's process never aborts it.
#ifndef PRISTINE_SHIM_THREAD_ROLE_H_
#define PRISTINE_SHIM_THREAD_ROLE_H_

#include <cstdint>

#include "absl/base/attributes.h"
#include "absl/base/thread_annotations.h"

namespace pristine {

enum class Role : uint32_t {
  kTemplate = 1,
  kSpare = 2,
  kNewThread = 4,
  kForkChild = 8,
  kSignalSafe = 16,
};
constexpr uint32_t operator|(Role a, Role b) {
  return static_cast<uint32_t>(a) | static_cast<uint32_t>(b);
}
constexpr uint32_t Bits(Role r) { return static_cast<uint32_t>(r); }

namespace thread_role_internal {
// Checked builds: the roles the calling thread plays (Role bits).
uint32_t CurrentRoles();
void Add(Role role);
void Remove(Role role);
[[noreturn]] void RoleViolation(const char* what, const char* file, int line);
}  // namespace thread_role_internal

// A role as a capability. Holds no state: the analysis tracks it at build
// time; checked builds record it per thread.
class ABSL_LOCKABLE ThreadRole {
 public:
  constexpr explicit ThreadRole(Role role) : role_(role) {}
  ThreadRole(const ThreadRole&) = delete;
  ThreadRole& operator=(const ThreadRole&) = delete;

  // The calling thread plays this role from here on (for the analysis: until
  // the end of the function or Leave; for a checked build: until Leave).
  void Enter() const ABSL_EXCLUSIVE_LOCK_FUNCTION() {
#ifdef PRISTINE_CHECKS
    thread_role_internal::Add(role_);
#endif
  }
  // The calling thread stops playing it (a spare or a new thread about to run
  // the program's routine, a signal-safe entry point returning).
  void Leave() const ABSL_UNLOCK_FUNCTION() {
#ifdef PRISTINE_CHECKS
    thread_role_internal::Remove(role_);
#endif
  }

  Role role() const { return role_; }

 private:
  const Role role_;
};

extern const ThreadRole kTemplateRole;
extern const ThreadRole kSpareRole;
extern const ThreadRole kNewThreadRole;
extern const ThreadRole kForkChildRole;
extern const ThreadRole kSignalSafeRole;

// Scoped: plays `role` until the end of the enclosing block.
class ABSL_SCOPED_LOCKABLE ScopedRole {
 public:
  explicit ScopedRole(const ThreadRole& role) ABSL_EXCLUSIVE_LOCK_FUNCTION(role) : role_(role) {
    role_.Enter();
  }
  ~ScopedRole() ABSL_UNLOCK_FUNCTION() { role_.Leave(); }
  ScopedRole(const ScopedRole&) = delete;
  ScopedRole& operator=(const ScopedRole&) = delete;

 private:
  const ThreadRole& role_;
};

#define PRISTINE_REQUIRES_ROLE(...) ABSL_EXCLUSIVE_LOCKS_REQUIRED(__VA_ARGS__)
#define PRISTINE_EXCLUDES_ROLE(...) ABSL_LOCKS_EXCLUDED(__VA_ARGS__)

// `mask`: Role bits, any of which will do.
#ifdef PRISTINE_CHECKS
#define PRISTINE_CHECK_ROLE(mask)                                                   \
  ((::pristine::thread_role_internal::CurrentRoles() & (mask)) != 0                 \
       ? (void)0                                                                     \
       : ::pristine::thread_role_internal::RoleViolation("not in role " #mask, __FILE__, \
                                                         __LINE__))
#define PRISTINE_CHECK_NOT_ROLE(mask)                                                \
  ((::pristine::thread_role_internal::CurrentRoles() & (mask)) == 0                  \
       ? (void)0                                                                     \
       : ::pristine::thread_role_internal::RoleViolation("in role " #mask, __FILE__, __LINE__))
#else
#define PRISTINE_CHECK_ROLE(r) ((void)0)
#define PRISTINE_CHECK_NOT_ROLE(r) ((void)0)
#endif

}  // namespace pristine

#endif  // PRISTINE_SHIM_THREAD_ROLE_H_
