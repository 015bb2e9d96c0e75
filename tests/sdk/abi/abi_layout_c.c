/* The ABI layout as a C99 compiler lays it out (see abi_layout.h). */
#include "tests/sdk/abi/abi_layout.h"

#define X(name, value) {name, value},
static const airlock_test_layout_entry kLayout[] = {AIRLOCK_ABI_LAYOUT};
#undef X

const airlock_test_layout_entry* airlock_test_c_layout(size_t* count) {
  *count = sizeof(kLayout) / sizeof(kLayout[0]);
  return kLayout;
}
