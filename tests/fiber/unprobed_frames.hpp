// See unprobed_frames.cpp.
#pragma once

namespace weft_test {
// Makes a frame (with no stack probes) reaching down to about `target` (a few dozen bytes
// below it) and writes its lowest byte. `target` must lie below the caller's stack pointer.
void touch_far_below(char* target);
}  // namespace weft_test
