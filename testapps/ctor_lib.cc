// SPDX-License-Identifier: Apache-2.0
// libctor_lib.so: a shared library whose constructor creates a thread with pthread_create and
// joins it (a create from a constructor run by dlopen, with the loader's lock
// held). dlopen_ctor reads the results through the exported variables below.

#include <pthread.h>
#include <sys/stat.h>

#include "thread_state.h"

namespace {

long long NetInode() { return testapp::NsInode("net"); }

}  // namespace

extern "C" {

__attribute__((visibility("default"))) long long ctor_lib_caller_net = -2;
__attribute__((visibility("default"))) long long ctor_lib_thread_net = -2;
__attribute__((visibility("default"))) int ctor_lib_create_rc = -2;
__attribute__((visibility("default"))) int ctor_lib_join_rc = -2;

}

namespace {

void* ThreadMain(void*) {
  ctor_lib_thread_net = NetInode();
  return nullptr;
}

__attribute__((constructor)) void CtorLibInit() {
  ctor_lib_caller_net = NetInode();
  pthread_t th;
  ctor_lib_create_rc = pthread_create(&th, nullptr, ThreadMain, nullptr);
  if (ctor_lib_create_rc == 0) ctor_lib_join_rc = pthread_join(th, nullptr);
}

}  // namespace
