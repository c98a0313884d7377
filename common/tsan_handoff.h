// Happens-before edges that ThreadSanitizer cannot see (docs/testing.md, "TSan"). Debian's
// gRPC is not instrumented: when it hands an object from the thread that started a call to
// the thread that runs the call's callbacks, the synchronisation happens inside libgrpc.
// The side that hands the object over calls HandoffRelease(obj) last, the side that takes
// it calls HandoffAcquire(obj) first. Both compile to nothing outside -fsanitize=thread.
#pragma once

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace coord {

#if defined(__SANITIZE_THREAD__)
inline void HandoffRelease(const void* obj) { __tsan_release(const_cast<void*>(obj)); }
inline void HandoffAcquire(const void* obj) { __tsan_acquire(const_cast<void*>(obj)); }
#else
inline void HandoffRelease(const void*) {}
inline void HandoffAcquire(const void*) {}
#endif

}  // namespace coord
