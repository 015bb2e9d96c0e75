# Installs the SDK for out-of-tree plugins:
#   include/airlock/...                      the C ABI and the header-only C++ layer
#   lib/cmake/AirlockSDK/AirlockSDKConfig.cmake, ...ConfigVersion.cmake
#   lib/cmake/AirlockSDK/AirlockSDKTargets.cmake (imported target Airlock::sdk)
#   lib/cmake/AirlockSDK/AirlockPluginHelpers.cmake (airlock_add_plugin_module)
# Everything is in the install component "airlock_sdk":
#   cmake --install <build> --component airlock_sdk --prefix <prefix>
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Header-only and architecture-independent: a plain lib/cmake (searched by
# find_package on every platform), not a multiarch libdir.
set(AIRLOCK_SDK_INSTALL_CMAKEDIR lib/cmake/AirlockSDK)

# Exported as Airlock::sdk, the same name in-tree code links through the alias.
set_target_properties(airlock_sdk PROPERTIES EXPORT_NAME sdk)

install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/airlock
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT airlock_sdk
  FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp")

install(TARGETS airlock_sdk EXPORT AirlockSDKTargets COMPONENT airlock_sdk)
install(EXPORT AirlockSDKTargets
  NAMESPACE Airlock::
  DESTINATION ${AIRLOCK_SDK_INSTALL_CMAKEDIR}
  COMPONENT airlock_sdk)

configure_package_config_file(
  ${CMAKE_CURRENT_SOURCE_DIR}/cmake/AirlockSDKConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/AirlockSDKConfig.cmake
  INSTALL_DESTINATION ${AIRLOCK_SDK_INSTALL_CMAKEDIR})
# The SDK is header-only: one install serves any architecture. Within a major
# version the headers only grow (ABI 1 appends members), so a newer minor
# satisfies a request for an older one.
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/AirlockSDKConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion
  ARCH_INDEPENDENT)

install(FILES
    ${CMAKE_CURRENT_BINARY_DIR}/AirlockSDKConfig.cmake
    ${CMAKE_CURRENT_BINARY_DIR}/AirlockSDKConfigVersion.cmake
    ${CMAKE_CURRENT_SOURCE_DIR}/cmake/AirlockPluginHelpers.cmake
  DESTINATION ${AIRLOCK_SDK_INSTALL_CMAKEDIR}
  COMPONENT airlock_sdk)
