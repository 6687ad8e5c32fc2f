// SPDX-License-Identifier: Apache-2.0
// Happens-before edges that race detectors cannot see: the library's own
// synchronisation (futex words and atomics, in code no detector instruments)
// orders what the program wrote before pthread_create with what the new
// thread reads, and the library's threads' accesses among themselves.
//
//  - valgrind (helgrind, drd): client requests from valgrind's header-only
//    helgrind.h (drd recognises the same requests), compiled in when the
//    build was configured with the header there (Debian package valgrind:
//    shim/CMakeLists.txt defines PRISTINE_HAVE_VALGRIND). Outside
//    valgrind each is a few register rotations (no system call, no branch on
//    a global), and they sit only on paths that forward or hand off.
//  - ThreadSanitizer: __tsan_release / __tsan_acquire, looked up at run time
//    (interpose.h) when a TSan runtime is loaded behind the library. Ahead of
//    it, TSan orders each create through its own interceptor.
//
// Any thread; no allocation, no lock, no system call.
#ifndef PRISTINE_SHIM_ANNOTATE_H_
#define PRISTINE_SHIM_ANNOTATE_H_

#ifdef PRISTINE_HAVE_VALGRIND
#include <valgrind/helgrind.h>
#endif

#include "interpose.h"

namespace pristine {

// Everything the calling thread did before this call happens before what a
// thread does after a later HappensAfter(tag) with the same tag (valgrind).
inline void HappensBefore(const void* tag) {
#ifdef PRISTINE_HAVE_VALGRIND
  ANNOTATE_HAPPENS_BEFORE(tag);
#else
  (void)tag;
#endif
}

inline void HappensAfter(const void* tag) {
#ifdef PRISTINE_HAVE_VALGRIND
  ANNOTATE_HAPPENS_AFTER(tag);
#else
  (void)tag;
#endif
}

// `word` (a futex word or another atomic the library synchronises on) is read
// and written concurrently by design: valgrind stops checking it, so that
// the synchronisation itself is not reported (helgrind and drd understand
// neither atomics nor futexes; HappensBefore/After carry the ordering).
inline void SyncWord(const void* word, unsigned long size) {
#ifdef PRISTINE_HAVE_VALGRIND
  VALGRIND_HG_DISABLE_CHECKING(word, size);
#else
  (void)word;
  (void)size;
#endif
}

// `word`, a SyncWord on a stack or in memory about to be given back, becomes
// ordinary memory again, with no history (the program may reuse it).
inline void SyncWordDone(const void* word, unsigned long size) {
#ifdef PRISTINE_HAVE_VALGRIND
  VALGRIND_HG_ENABLE_CHECKING(word, size);
  VALGRIND_HG_CLEAN_MEMORY(word, size);
#else
  (void)word;
  (void)size;
#endif
}

// The creator of a forwarded thread, before it hands the setup `tag` to a
// spare or the template: what the program wrote so far happens before the
// new thread's start routine (valgrind and ThreadSanitizer).
inline void PublishToNewThread(const void* tag) {
  HappensBefore(tag);
  if (TsanSyncFn release = TsanRelease()) release(const_cast<void*>(tag));
}

// The new thread, before any code of the program runs.
inline void ReceiveFromCreator(const void* tag) {
  HappensAfter(tag);
  if (TsanSyncFn acquire = TsanAcquire()) acquire(const_cast<void*>(tag));
}

}  // namespace pristine

#endif  // PRISTINE_SHIM_ANNOTATE_H_
