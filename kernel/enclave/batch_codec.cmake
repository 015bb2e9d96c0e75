# Record batch byte codec for the kernel <-> enclave socket (included from this
# folder's CMakeLists.txt).
add_library(airlock_batch_codec STATIC ${CMAKE_CURRENT_LIST_DIR}/batch_codec.cc)
target_include_directories(airlock_batch_codec PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(airlock_batch_codec PUBLIC airlock_sdk)
airlock_warnings(airlock_batch_codec)
