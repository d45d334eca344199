// Linked into the GPU check kit's programs only. Debian 12's static libstdc++ calls arc4random
// (glibc 2.36) for std::random_device; this definition (getrandom(2), glibc 2.25) satisfies it
// first, so the kit runs on any glibc from 2.34 (Ubuntu 22.04, RHEL 9, Debian 12 and later).
#include <sys/random.h>

#include <cstdint>

extern "C" uint32_t arc4random(void) {
  uint32_t value = 0;
  while (getrandom(&value, sizeof value, 0) != static_cast<ssize_t>(sizeof value)) {
  }
  return value;
}
