// SPDX-License-Identifier: Apache-2.0
#include "attr.h"

#include <signal.h>

#include <atomic>
#include <cstring>

#include "absl/base/attributes.h"
#include "interpose.h"

namespace pristine {

bool AttrHasSigmask(const pthread_attr_t* attr) {
  sigset_t mask;
  return attr != nullptr && LIBC(pthread_attr_getsigmask_np)(attr, &mask) == 0;
}

bool AttrHasExplicitSched(const pthread_attr_t* attr) {
  int inherit = PTHREAD_INHERIT_SCHED;
  return attr != nullptr && LIBC(pthread_attr_getinheritsched)(attr, &inherit) == 0 &&
         inherit == PTHREAD_EXPLICIT_SCHED;
}

// glibc reports "no CPU set in this attribute" as a set with every bit on.
bool AttrHasAffinity(const pthread_attr_t* attr) {
  if (attr == nullptr) return false;
  cpu_set_t set;
  if (LIBC(pthread_attr_getaffinity_np)(attr, sizeof set, &set) != 0) return false;
  for (size_t i = 0; i < sizeof set / sizeof set.__bits[0]; ++i) {
    if (~set.__bits[i] != 0) return true;
  }
  return false;
}

namespace {
// Set once by pthread_setattr_default_np, for good.
ABSL_CONST_INIT std::atomic<bool> g_default_attrs_changed{false};
}  // namespace

void NoteDefaultAttrsChanged() { g_default_attrs_changed.store(true, std::memory_order_relaxed); }

bool DefaultAttrsChanged() { return g_default_attrs_changed.load(std::memory_order_relaxed); }

bool AttrCopy::Init(const pthread_attr_t* in) {
  if (in == nullptr && DefaultAttrsChanged()) {
    // pthread_attr_init's guard size is a page, whatever the defaults say;
    // glibc's create with a null attr takes them all.
    if (LIBC(pthread_getattr_default_np)(&attr_) != 0) return false;
    live_ = true;
    return true;
  }
  if (LIBC(pthread_attr_init)(&attr_) != 0) return false;
  live_ = true;
  if (in == nullptr) return true;
  // Field by field: glibc keeps the CPU set and signal mask in storage the
  // attribute points to, which a byte copy would share with the caller's.
  int v;
  size_t size;
  struct sched_param param;
  void* stackaddr = nullptr;
  bool ok = LIBC(pthread_attr_getdetachstate)(in, &v) == 0 &&
            LIBC(pthread_attr_setdetachstate)(&attr_, v) == 0 &&
            LIBC(pthread_attr_getguardsize)(in, &size) == 0 &&
            LIBC(pthread_attr_setguardsize)(&attr_, size) == 0 &&
            LIBC(pthread_attr_getinheritsched)(in, &v) == 0 &&
            LIBC(pthread_attr_setinheritsched)(&attr_, v) == 0 &&
            LIBC(pthread_attr_getschedpolicy)(in, &v) == 0 &&
            LIBC(pthread_attr_setschedpolicy)(&attr_, v) == 0 &&
            LIBC(pthread_attr_getschedparam)(in, &param) == 0 &&
            LIBC(pthread_attr_setschedparam)(&attr_, &param) == 0 &&
            LIBC(pthread_attr_getscope)(in, &v) == 0 &&
            LIBC(pthread_attr_setscope)(&attr_, v) == 0 &&
            LIBC(pthread_attr_getstacksize)(in, &size) == 0 &&
            // A stack the caller supplied (null: glibc allocates one).
            LIBC(pthread_attr_getstackaddr)(in, &stackaddr) == 0;
  if (ok && stackaddr != nullptr) {
    // glibc stores the stack's top; setstack takes its bottom.
    ok = LIBC(pthread_attr_setstack)(&attr_, static_cast<char*>(stackaddr) - size, size) == 0;
  } else if (ok) {
    // Zero (unset) is kept as the default, which setstacksize refuses.
    ok = size == 0 || LIBC(pthread_attr_setstacksize)(&attr_, size) == 0;
  }
  if (ok && AttrHasAffinity(in)) {
    cpu_set_t set;
    ok = LIBC(pthread_attr_getaffinity_np)(in, sizeof set, &set) == 0 &&
         LIBC(pthread_attr_setaffinity_np)(&attr_, sizeof set, &set) == 0;
  }
  if (ok && AttrHasSigmask(in)) {
    sigset_t mask;
    ok = LIBC(pthread_attr_getsigmask_np)(in, &mask) == 0 &&
         LIBC(pthread_attr_setsigmask_np)(&attr_, &mask) == 0;
  }
  return ok;
}

AttrCopy::~AttrCopy() {
  if (live_) LIBC(pthread_attr_destroy)(&attr_);
}

bool AttrCopy::SetAffinity(const cpu_set_t& set) {
  return LIBC(pthread_attr_setaffinity_np)(&attr_, sizeof set, &set) == 0;
}

bool AttrCopy::SetSigmask(uint64_t mask) {
  sigset_t set;
  sigemptyset(&set);
  memcpy(&set, &mask, sizeof mask);
  return LIBC(pthread_attr_setsigmask_np)(&attr_, &set) == 0;
}

}  // namespace pristine
