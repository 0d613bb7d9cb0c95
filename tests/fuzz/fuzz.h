/* tests/fuzz/fuzz.h - what the fuzz targets share: a property check that traps, so
 * libFuzzer (and the corpus replay) report a broken property like a crash. */
#ifndef BW_FUZZ_H
#define BW_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond))                                                                     \
			__builtin_trap();                                                        \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
