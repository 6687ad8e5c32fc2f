// The shim's life in its host process: load, first use, fork and rebase, and
// when the template thread is started or started again.
//
// Library load (constructor, or the first entry point that runs before it):
// parse the options, resolve the real functions, register fork handlers and,
// with baseline=load, start the template from the loading thread (the main
// thread before main: the baseline). With baseline=first-thread the template
// starts at the first create, from the thread that makes it. In a forked child
// the template is gone; it starts again on first need from the forking thread,
// whose state is the child's baseline.
#ifndef PRISTINE_SHIM_LIFECYCLE_H_
#define PRISTINE_SHIM_LIFECYCLE_H_

#include <atomic>
#include <cstdint>

#include "taint.h"

namespace pristine {

namespace lifecycle_internal {
enum State : uint32_t { kUninitialised, kInitialising, kActive, kPassThrough };
extern std::atomic<uint32_t> g_state;
}  // namespace lifecycle_internal

// The create path's first test: true when the real function can be called
// right away (the shim is off, or the caller is known to be clean).
inline bool CreatePassesStraightThrough() {
  using namespace lifecycle_internal;
  uint32_t state = g_state.load(std::memory_order_acquire);
  return state == kPassThrough || (state == kActive && ThreadLooksUntainted());
}

// Initialises the shim if nothing did yet. Any thread but the template.
void EnsureInitialized();

// Called by the create slow path before it looks at the caller's taint:
// initialises, and starts the template if now is when it should start.
// Returns false when creates must pass through (mode=off, no template).
bool PrepareForCreate();

// Called by every entry point that changes the calling thread's state, before
// the change: the lazily started template of a forked child must be started
// from a thread that is still in the baseline state.
void BeforeSelfChange();

// Makes the calling thread's state the baseline: the template is stopped and
// started again from the calling thread. For pristine_rebase() and changes
// Linux allows only in a single-threaded process. Not on the template.
// Returns false if the new template could not start (creates then pass
// through, with a warning).
bool RebaseToCallingThread();

}  // namespace pristine

#endif  // PRISTINE_SHIM_LIFECYCLE_H_
