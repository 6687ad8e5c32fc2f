// SPDX-License-Identifier: Apache-2.0
// Thread attributes: what a caller's pthread_attr_t asks for, and a copy of it
// that carries the baseline's values to glibc (policy.h, kCarriedDims), which
// applies them before the new thread runs.
//
// Runs on the caller of pthread_create (any thread but the template); the
// functions it calls are libc's, looked up on first use (interpose.h).
#ifndef PRISTINE_SHIM_ATTR_H_
#define PRISTINE_SHIM_ATTR_H_

#include <pthread.h>
#include <sched.h>

#include <cstdint>

namespace pristine {

// Whether `attr` (null: the defaults) sets a signal mask, explicit
// scheduling, or a CPU set of its own.
bool AttrHasSigmask(const pthread_attr_t* attr);
bool AttrHasExplicitSched(const pthread_attr_t* attr);
bool AttrHasAffinity(const pthread_attr_t* attr);

// pthread_setattr_default_np changed what a null attr stands for (for good):
// spares, made with the old defaults, no longer fit a create with a null attr
// (the template makes those threads), and a copy of a null attr starts from
// the new defaults. Any thread.
void NoteDefaultAttrsChanged();
bool DefaultAttrsChanged();

// A copy of a caller's attributes with some values replaced: what
// pthread_create gets on the caller's behalf. Destroyed with the object.
class AttrCopy {
 public:
  // Copies every attribute of `attr` (null: the defaults, as
  // pthread_setattr_default_np left them). False if libc refused (then
  // nothing must be used).
  bool Init(const pthread_attr_t* attr);
  ~AttrCopy();
  AttrCopy() = default;
  AttrCopy(const AttrCopy&) = delete;
  AttrCopy& operator=(const AttrCopy&) = delete;

  bool SetAffinity(const cpu_set_t& set);
  bool SetSigmask(uint64_t mask);
  const pthread_attr_t* get() const { return &attr_; }

 private:
  pthread_attr_t attr_;
  bool live_ = false;
};

}  // namespace pristine

#endif  // PRISTINE_SHIM_ATTR_H_
