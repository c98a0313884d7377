# coordctl linked with the static archives of its libraries (COORD_STATIC_CLI).
#
# coordctl is exec'd for every command a person or a script types, and once per
# launch. Linked against 70 shared libraries (gRPC, Protobuf, some 50 Abseil
# pieces, ...), it spent 30 ms of a 190 ms 8x8 launch in the dynamic loader before
# it read its arguments (docs/benchmarks.md). A target whose property
# COORD_STATIC_DEPS is set links the archives Debian ships instead, through the
# wrapped targets below; every other target links the shared libraries as before.
# OpenSSL stays shared (one copy in the process: libcpp-httplib uses it too), and
# so do libsystemd and libcpp-httplib (Debian ships no archive of either).
option(COORD_STATIC_CLI "Link coordctl with the static archives of gRPC, Protobuf, Abseil, RE2, libssh2, yaml-cpp, xxHash and Boost" ON)
if(COORD_STATIC_CLI AND (COORD_SANITIZE OR COORD_FUZZ))
  # TSan needs a PIE, and the sanitizer suppressions name the shared libraries.
  message(STATUS "COORD_STATIC_CLI: off in a sanitizer build (coordctl links the shared libraries)")
  set(COORD_STATIC_CLI OFF)
endif()

set(COORD_STATIC_DEPS_ON "$<BOOL:$<TARGET_PROPERTY:COORD_STATIC_DEPS>>")
add_library(coord_static_deps INTERFACE)

if(COORD_STATIC_CLI)
  pkg_check_modules(COORD_STATIC_PC REQUIRED grpc++ protobuf re2 libssh2 yaml-cpp libxxhash)
  # Left to the dynamic linker: OpenSSL, libc's own pieces and what libssh2's .pc
  # names for its optional libgcrypt backend.
  set(_coord_shared_ok ssl crypto dl rt pthread atomic m c gpg-error gcrypt systemd)
  set(_coord_archives)
  set(_coord_missing)
  foreach(_name IN LISTS COORD_STATIC_PC_STATIC_LIBRARIES ITEMS boost_program_options)
    if(_name IN_LIST _coord_shared_ok)
      continue()
    endif()
    find_library(COORD_ARCHIVE_${_name} NAMES lib${_name}.a)
    if(COORD_ARCHIVE_${_name})
      list(APPEND _coord_archives ${COORD_ARCHIVE_${_name}})
    else()
      list(APPEND _coord_missing lib${_name}.a)
    endif()
  endforeach()
  if(_coord_missing)
    message(STATUS "COORD_STATIC_CLI: off, no ${_coord_missing} (coordctl links the shared libraries)")
    set(COORD_STATIC_CLI OFF)
  else()
    list(REMOVE_DUPLICATES _coord_archives)
    # A group: the archives need each other in no single order.
    target_link_libraries(coord_static_deps INTERFACE -Wl,--start-group ${_coord_archives}
                          -Wl,--end-group OpenSSL::SSL OpenSSL::Crypto Threads::Threads
                          ${CMAKE_DL_LIBS} rt atomic)
  endif()
endif()

# Makes an imported target's libraries depend on the consumer: its shared
# libraries for most, coord_static_deps for a target with COORD_STATIC_DEPS set.
function(coord_static_for_cli target)
  get_target_property(_libs ${target} INTERFACE_LINK_LIBRARIES)
  set(_wrapped)
  foreach(_lib IN LISTS _libs)
    list(APPEND _wrapped "$<$<NOT:${COORD_STATIC_DEPS_ON}>:${_lib}>")
  endforeach()
  list(APPEND _wrapped "$<${COORD_STATIC_DEPS_ON}:coord_static_deps>")
  set_property(TARGET ${target} PROPERTY INTERFACE_LINK_LIBRARIES "${_wrapped}")
endfunction()

# The same for an imported shared library (Boost, yaml-cpp): a wrapper to link instead.
function(coord_static_wrapper name target)
  add_library(${name} INTERFACE)
  target_link_libraries(${name} INTERFACE "$<$<NOT:${COORD_STATIC_DEPS_ON}>:${target}>"
                        "$<${COORD_STATIC_DEPS_ON}:coord_static_deps>")
endfunction()
