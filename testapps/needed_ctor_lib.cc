// SPDX-License-Identifier: Apache-2.0
// A library the program links against (DT_NEEDED) whose constructor makes forwarded creates
// before the program's main, and leaves a tainted worker that creates more on request
// (testapps/needed_ctor.cc). Under the library, its constructors may run before the library's
// own static initialisers: a dynamic initialiser of the library would wipe what these creates set
// up (its spare threads' records).

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace {

sem_t g_go, g_done;
std::atomic<int> g_ran{0};
int g_requested = 0;
int g_create_errors = 0;

void* Child(void*) {
  g_ran.fetch_add(1);
  return nullptr;
}

void CreateJoined(int n) {
  for (int i = 0; i < n; ++i) {
    pthread_t t;
    if (pthread_create(&t, nullptr, Child, nullptr) != 0) {
      ++g_create_errors;
      continue;
    }
    pthread_join(t, nullptr);
  }
}

// A private fs_struct: only a forwarded create isolates it, and a null attr is served by a spare.
void* Worker(void*) {
  if (unshare(CLONE_FS) != 0 || chdir("/") != 0) {
    std::perror("needed_ctor_lib: unshare(CLONE_FS)");
    std::exit(3);
  }
  CreateJoined(3);
  sem_post(&g_done);
  while (sem_wait(&g_go) != 0) {
  }
  CreateJoined(g_requested);
  sem_post(&g_done);
  return nullptr;
}

__attribute__((constructor)) void Setup() {
  sem_init(&g_go, 0, 0);
  sem_init(&g_done, 0, 0);
  pthread_t w;
  if (pthread_create(&w, nullptr, Worker, nullptr) != 0) std::exit(2);
  pthread_detach(w);
  while (sem_wait(&g_done) != 0) {
  }
}

}  // namespace

// Called by main: the worker creates `n` more threads; returns how many ran in all.
extern "C" int needed_ctor_create_more(int n, int* create_errors) {
  g_requested = n;
  sem_post(&g_go);
  while (sem_wait(&g_done) != 0) {
  }
  *create_errors = g_create_errors;
  return g_ran.load();
}
