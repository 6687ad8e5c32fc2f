// SPDX-License-Identifier: Apache-2.0
/* pristine.h: the opt-in API of libpristine.so, for programs that want to ask
 * or steer explicitly. C and C++.
 *
 * Header-only on the program's side: every function here is a static inline
 * wrapper that looks the shim's implementation up at run time with
 * dlsym(RTLD_DEFAULT, ...), once per translation unit. A program built with
 * this header therefore links without libpristine.so (nothing to add to the
 * link line; on glibc < 2.34 add -ldl, which `pkg-config --libs pristine`
 * does) and runs unchanged when the library is not preloaded: each call then
 * does nothing harmful and returns the value documented below.
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef PRISTINE_H_
#define PRISTINE_H_

#include <dlfcn.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bits of pristine_tainted_dimensions(), in this order. */
enum {
  PRISTINE_DIM_NET, PRISTINE_DIM_UTS, PRISTINE_DIM_IPC, PRISTINE_DIM_MNT, PRISTINE_DIM_CGROUP,
  PRISTINE_DIM_PID, PRISTINE_DIM_TIME, PRISTINE_DIM_FS, PRISTINE_DIM_FILES,
  PRISTINE_DIM_AFFINITY, PRISTINE_DIM_SIGMASK, PRISTINE_DIM_SCHED, PRISTINE_DIM_NAME,
  PRISTINE_DIM_CAPS, PRISTINE_DIM_NNP, PRISTINE_DIM_SECCOMP, PRISTINE_DIM_LANDLOCK,
  PRISTINE_DIM_CREDS,
  PRISTINE_DIM_COUNT
};

/* Internal: the shim's symbol `name`, or null when it is not loaded. */
static inline void* pristine_internal_lookup_(void** cache, const char* name) {
  void* f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
  if (f == 0) {
    /* RTLD_DEFAULT is ((void*)0) in glibc; spelled out so that this header
     * needs no _GNU_SOURCE. A miss is not cached: the library may be
     * dlopen()ed later (it then only serves threads created after). */
    f = dlsym((void*)0, name);
    if (f != 0) __atomic_store_n(cache, f, __ATOMIC_RELEASE);
  }
  return f;
}

/* 1 if libpristine.so is loaded in this process, else 0. */
static inline int pristine_loaded(void) {
  static void* cache;
  return pristine_internal_lookup_(&cache, "pristine_rebase_v1") != 0;
}

/* Adopts the calling thread's current state as the new baseline: threads
 * created from now on by threads in this state are no longer forwarded, and
 * the template thread is restarted from the caller. Returns 0 on success,
 * -1 if the shim could not rebase (not loaded, mode=off, or the new template
 * could not start: creates then pass through unchanged, with a warning). */
static inline int pristine_rebase(void) {
  static void* cache;
  void* f = pristine_internal_lookup_(&cache, "pristine_rebase_v1");
  return f != 0 ? ((int (*)(void))f)() : -1;
}

/* The dimensions in which the calling thread differs from the baseline now,
 * one bit per dimension (1u << PRISTINE_DIM_NET, ...), read from the kernel.
 * 0 when the shim is not loaded or not active (mode=off; baseline=first-thread
 * before the first thread). */
static inline unsigned pristine_tainted_dimensions(void) {
  static void* cache;
  void* f = pristine_internal_lookup_(&cache, "pristine_tainted_dimensions_v1");
  return f != 0 ? ((unsigned (*)(void))f)() : 0u;
}

/* The option key of dimension `bit_index` ("net", "affinity", ...), or null
 * if out of range. Works without the shim too (the names are fixed). */
static inline const char* pristine_dimension_name(unsigned bit_index) {
  static const char* const names[PRISTINE_DIM_COUNT] = {
      "net", "uts", "ipc", "mnt", "cgroup", "pid", "time", "fs", "files", "affinity",
      "sigmask", "sched", "name", "caps", "nnp", "seccomp", "landlock", "creds"};
  return bit_index < PRISTINE_DIM_COUNT ? names[bit_index] : 0;
}

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* PRISTINE_H_ */
