// SPDX-License-Identifier: Apache-2.0
// needed_ctor: links needed_ctor_lib (DT_NEEDED), whose constructor makes forwarded creates before
// main; main then has its worker create more. Prints {"ran": N, "expected": M, "errors": E}; a
// create whose start routine never runs makes it hang (the test's timeout) or print ran < expected.

#include <cstdio>

extern "C" int needed_ctor_create_more(int n, int* create_errors);

int main() {
  int errors = 0;
  int ran = needed_ctor_create_more(8, &errors);
  std::printf("{\"ran\": %d, \"expected\": 11, \"errors\": %d}\n", ran, errors);
  return ran == 11 && errors == 0 ? 0 : 1;
}
